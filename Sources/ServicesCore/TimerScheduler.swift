/// The master's timers and cron jobs as a pure state machine: the clock comes in as values, the
/// decisions (which jobs fire, when to wake next) come out. No syscalls, so tests inject any clock.
///
/// Interval timers fire at `start + k * interval` (no drift); a late wake fires once and skips the
/// missed runs. Cron jobs fire at their minute in local time; the master converts the wall-clock
/// instant into a monotonic deadline on each call, so clock changes are picked up at the next decision.
public struct TimerScheduler: Sendable {
    public enum Kind: Equatable, Sendable {
        case every(nanoseconds: UInt64)
        case cron(CronSpec)
    }

    public struct Job: Equatable, Sendable {
        public let id: Int
        public let kind: Kind
        public init(id: Int, kind: Kind) {
            self.id = id
            self.kind = kind
        }
    }

    /// The clock as the master reads it once per decision.
    public struct Clock: Equatable, Sendable {
        /// CLOCK_MONOTONIC, ns.
        public var monotonic: UInt64
        /// Unix time, ns.
        public var unixNanoseconds: Int64
        /// Local time minus UTC, seconds (cron fields are local time, as in uWSGI).
        public var utcOffsetSeconds: Int64
        public init(monotonic: UInt64, unixNanoseconds: Int64, utcOffsetSeconds: Int64) {
            self.monotonic = monotonic
            self.unixNanoseconds = unixNanoseconds
            self.utcOffsetSeconds = utcOffsetSeconds
        }
    }

    /// One decision: run job `id`, which was due at monotonic `scheduledAt`.
    public struct Fire: Equatable, Sendable {
        public let id: Int
        public let scheduledAt: UInt64
        public init(id: Int, scheduledAt: UInt64) {
            self.id = id
            self.scheduledAt = scheduledAt
        }
    }

    private var jobs: [Job] = []
    /// Monotonic due time per job id.
    private var due: [Int: UInt64] = [:]
    /// The cron minute (local seconds) each cron job is waiting for, so one minute fires once.
    private var cronMinute: [Int: Int64] = [:]

    public init() {}

    public var isEmpty: Bool { jobs.isEmpty }

    /// Adds a job; its first run is one interval (or the next matching minute) after `clock`.
    public mutating func add(_ job: Job, clock: Clock) {
        jobs.append(job)
        schedule(job, clock: clock, after: nil)
    }

    /// The earliest monotonic deadline to wake at, nil when there is no job.
    public var nextDeadline: UInt64? { due.values.min() }

    /// Every job due at `clock`, each rescheduled.
    public mutating func fire(clock: Clock) -> [Fire] {
        var out: [Fire] = []
        for job in jobs {
            guard let at = due[job.id], at <= clock.monotonic else { continue }
            out.append(Fire(id: job.id, scheduledAt: at))
            schedule(job, clock: clock, after: at)
        }
        return out
    }

    private mutating func schedule(_ job: Job, clock: Clock, after previous: UInt64?) {
        switch job.kind {
        case .every(let ns):
            // A worker's value reaches the master unchecked: clamp it, and saturate every sum, so no
            // interval can trap the master (callers refuse out-of-range intervals with an error).
            let interval = min(max(ns, 1), TimerInterval.maximumNanoseconds)
            guard let previous else {
                due[job.id] = clock.monotonic.saturatingAdd(interval)
                return
            }
            // Skip runs a late wake missed instead of firing them in a burst.
            var next = previous.saturatingAdd(interval)
            if next <= clock.monotonic {
                next = next.saturatingAdd(((clock.monotonic - next) / interval).saturatingMultiply(interval).saturatingAdd(interval))
            }
            due[job.id] = next
        case .cron(let spec):
            let localNow = clock.unixNanoseconds.floorDivNs() + clock.utcOffsetSeconds
            // After a firing, wait for a minute after the one that fired (a wake a little early
            // in wall time must not fire the same minute twice).
            let from = max(localNow, cronMinute[job.id] ?? Int64.min)
            guard let minute = spec.nextMatch(after: previous == nil ? localNow : from) else {
                due[job.id] = nil
                return
            }
            cronMinute[job.id] = minute
            let wallDue = (minute - clock.utcOffsetSeconds).multipliedReportingOverflow(by: 1_000_000_000)
            let diff = wallDue.partialValue.subtractingReportingOverflow(clock.unixNanoseconds)
            let wait: UInt64 = wallDue.overflow || diff.overflow ? UInt64.max : UInt64(max(0, diff.partialValue))
            due[job.id] = clock.monotonic.saturatingAdd(wait)
        }
    }
}

extension Int64 {
    fileprivate func floorDivNs() -> Int64 { floorDiv(1_000_000_000) }
}

