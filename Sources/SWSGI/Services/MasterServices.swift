import Glibc
import Posix
import ServicesCore

/// The master's side of the services, owned by its loop: schedules the timers (its timerfd wakes exactly
/// when one is due), sends each firing to its target's queue, supervises the mules. Everything the
/// processes share is in `setup`; nothing here is seen by a worker.
final class MasterServices {
    let setup: ServicesSetup
    /// What the app registered: each mule forked gets a copy (a thread of the master's app may still add to it).
    let registrations: RegistrationBook
    private var scheduler = TimerScheduler()
    /// Timers of the shared table already scheduled.
    private var knownTimers = 0
    private(set) var mules: MuleSupervisor
    private var receiveBuffer: [UInt8] = []
    private var fullQueues = FullQueueReport()
    /// Runs of unique jobs skipped because their previous run was still going.
    private(set) var skippedUniqueRuns = 0
    /// Set by `startMules`: what a mule closes right after its fork (the master's own fds).
    var closeMasterFDsInMule: () -> Void = {}

    init(setup: ServicesSetup, registrations: RegistrationBook) {
        self.setup = setup
        self.registrations = registrations
        mules = MuleSupervisor(count: setup.options.mules.count)
        timersChanged()
    }

    // MARK: timers

    /// Readable when a worker, a mule or a thread of the app added a timer after the set-up.
    var notifyFD: Int32 { setup.masterChannel.readEnd }

    func notified() {
        while (try? RecordChannel.receive(setup.masterChannel.readEnd, buffer: &receiveBuffer)) != nil {}
        timersChanged()
    }

    /// Schedules the shared table's timers not seen yet.
    private func timersChanged() {
        let clock = TimerScheduler.Clock.now()
        while knownTimers < setup.table.timerCount {
            if let t = setup.table.timer(knownTimers) { scheduler.add(.init(id: t.signal, kind: t.kind), clock: clock) }
            knownTimers += 1
        }
    }

    /// The next moment the master must act for the services (a timer, a delayed mule respawn).
    var nextDeadline: UInt64? {
        [scheduler.nextDeadline, mules.nextDeadline].compactMap { $0 }.min()
    }

    /// Fires due timers and respawns due mules. Called by the master's loop after every wake.
    func deadlinePassed() {
        guard let due = nextDeadline, due <= monotonicNanoseconds() else { return }
        let clock = TimerScheduler.Clock.now()
        if let d = scheduler.nextDeadline, d <= clock.monotonic {
            for f in scheduler.fire(clock: clock) { dispatch(signal: f.id, scheduledAt: f.scheduledAt) }
        }
        carryOut(mules.deadlinePassed(now: clock.monotonic))
    }

    /// Sends a signal to its target's queue. A unique signal whose last run has not finished is skipped.
    func dispatch(signal: Int, scheduledAt: UInt64) {
        // The shared table knows registrations made after the fork too.
        guard let reg = setup.table.signal(signal) ?? registrations.read({ $0.signals[signal].map { ($0.target, $0.unique) } }) else { return }
        if reg.unique, !setup.uniqueRuns.claim(signal) {
            skippedUniqueRuns += 1
            return
        }
        let record = ServiceRecord.signal(signal, scheduledAt: scheduledAt).bytes
        var sent = false
        for fd in setup.writeEnds(for: reg.target) {
            switch (try? RecordChannel.send(fd, record)) ?? .full {
            case .sent: sent = true
            case .full:
                if let line = fullQueues.skipped(signal: signal, target: reg.target, now: monotonicNanoseconds()) { ServerLog.line(line) }
            }
        }
        if reg.unique, !sent { setup.uniqueRuns.clear(signal) }
    }

    // MARK: mules

    /// A child was reaped: frees the unique flags it held; a mule is respawned (see MuleSupervisor).
    /// True when it was a mule.
    func childExited(pid: Int32, status: String) -> Bool {
        setup.uniqueRuns.clear(heldBy: pid)
        guard let actions = mules.exited(pid: pid, status: status, now: monotonicNanoseconds()) else { return false }
        carryOut(actions)
        return true
    }

    func startMules(closeMasterFDs: @escaping () -> Void) {
        closeMasterFDsInMule = closeMasterFDs
        carryOut(mules.start())
    }

    /// SIGHUP reloads the mules with the workers; their queues, held by the master, keep what is sent meanwhile.
    func reloadMules() { carryOut(mules.reload()) }

    /// At master exit: mules serve no requests, so they are killed and reaped.
    func stopMules() {
        let live = mules.mules.compactMap(\.pid)
        carryOut(mules.stop())
        for pid in live {
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        }
    }

    private func carryOut(_ actions: [MuleSupervisor.Action]) {
        for a in actions {
            switch a {
            case .log(let m): ServerLog.line(m)
            case .signal(let sig, let pid): kill(pid, sig)
            case .fork(let id):
                let (pid, e) = forkMule(id)
                let now = monotonicNanoseconds()
                carryOut(pid < 0 ? mules.forkFailed(id: id, reason: errnoText(e), now: now) : mules.forked(id: id, pid: pid, now: now))
            }
        }
    }

    // MARK: stats

    var cacheFigures: [SharedCache.Figures] { setup.cacheNames.compactMap { setup.caches[$0]?.figures } }

    /// Per configured mule: its id, pid (0 while down) and respawns.
    var muleFigures: [(id: Int, pid: Int32, respawns: Int)] {
        setup.options.mules.indices.map { i in
            let m = mules.mules.first { $0.id == i + 1 }
            return (i + 1, m?.pid ?? 0, m?.respawns ?? 0)
        }
    }
}

/// A signal whose every target queue is full (nothing took a run for long): said once every 10 s per
/// signal with the count skipped so far, not at the timer's rate.
struct FullQueueReport {
    static let intervalNanoseconds: UInt64 = 10_000_000_000
    private var skips: [Int: Int] = [:]
    private var nextLineAt: [Int: UInt64] = [:]

    /// The line to log now, if one is due.
    mutating func skipped(signal: Int, target: SignalTarget, now: UInt64) -> String? {
        skips[signal, default: 0] += 1
        guard now >= nextLineAt[signal, default: 0] else { return nil }
        nextLineAt[signal] = now + Self.intervalNanoseconds
        return "signal \(signal) for \(target): its queue is full (nothing took a run); \(skips[signal]!) runs skipped so far"
    }
}
