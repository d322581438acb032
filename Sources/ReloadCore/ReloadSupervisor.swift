/// How a process ended, as the runner saw it through waitpid.
public enum ProcessEnd: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// 128 + N for a death by signal N, as shells report it.
    public var shellCode: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "signal \(s)"
        }
    }
}

/// A generation's lifecycle: started, then serving, then on its way out.
public enum GenerationState: String, Sendable { case starting, ready, draining }

/// One instance of the wrapped command.
public struct Generation: Equatable, Sendable {
    public let number: Int
    public let pid: Int32
    public var state: GenerationState
    public let startedAt: Instant
    /// While starting: when it stops being given the benefit of the doubt.
    public var readyDeadline: Instant?
    /// While draining: when its whole process group gets SIGKILL.
    public var killDeadline: Instant?
    /// While handing over: the reload signal waits until the old listener's queue is empty, or this.
    public var handoverDeadline: Instant? = nil
}

/// What the last reload came to, for logs and the status file.
public struct ReloadOutcome: Equatable, Sendable {
    public let generation: Int
    public let succeeded: Bool
    public let reason: String
    public let durationNanoseconds: UInt64
}

/// The reload supervisor: the whole of hupwatch's decision making, as a value.
/// Events in, actions out; no fork, clock or I/O inside, so every sequence is unit-testable.
public struct ReloadSupervisor: Sendable {
    public struct Config: Sendable {
        public var gracefulTimeout: UInt64
        public var readyTimeout: UInt64
        public var reloadSignal: Int32
        public var onExit: OnExit
        public var restartBackoffInitial: UInt64 = 500_000_000
        public var restartBackoffMax: UInt64 = 30 * nanosecondsPerSecond
        /// Rebind mode: how long the reload signal may wait for the old listener's accept queue to empty
        /// (0: send it at once). Servers that close their listener on TERM reset what is still queued.
        public var handoverNanoseconds: UInt64 = 0

        public init(gracefulTimeout: UInt64, readyTimeout: UInt64, reloadSignal: Int32, onExit: OnExit) {
            self.gracefulTimeout = gracefulTimeout
            self.readyTimeout = readyTimeout
            self.reloadSignal = reloadSignal
            self.onExit = onExit
        }
    }

    public enum Event: Equatable, Sendable {
        case started
        case spawned(generation: Int, pid: Int32)
        case spawnFailed(generation: Int, reason: String, shellCode: Int32)
        case hangup
        case ready(generation: Int)
        case childExited(pid: Int32, status: ProcessEnd)
        case terminate(signal: Int32)
        case forward(signal: Int32)
        /// The old generation's listener has no connection waiting any more (see `awaitQueueDrain`).
        case queueDrained(generation: Int)
        /// The timer armed for `nextDeadline` fired.
        case deadlinePassed
    }

    public enum Action: Equatable, Sendable {
        case spawn(generation: Int)
        /// Begin waiting for this generation's readiness; answer with `.ready`.
        case watchReadiness(generation: Int)
        case stopWatchingReadiness(generation: Int)
        case signal(Int32, pid: Int32)
        /// SIGKILL to the generation's process group (its pgid is its pid).
        case killGroup(pgid: Int32)
        /// Point the socket path guard at what this generation now serves.
        case guardSocket(generation: Int)
        /// The guard must not fight a generation that is rebinding the path.
        case pauseGuard
        /// Watch the retiring generation's listener; answer `.queueDrained` when its accept queue is empty.
        case awaitQueueDrain(generation: Int)
        case log(String)
        /// An sd_notify line for hupwatch's own supervisor (READY=1, RELOADING=1, STOPPING=1, STATUS=...).
        case notifySupervisor(String)
        case statusChanged
        case exit(Int32)
    }

    public let config: Config
    public private(set) var generations: [Generation] = []
    public private(set) var currentNumber: Int?
    public private(set) var pendingNumber: Int?
    public private(set) var lastReload: ReloadOutcome?
    public private(set) var stopping = false
    private var nextNumber = 1
    private var hangupQueued = false
    private var reloadStartedAt: Instant = 0
    private var restartAt: Instant?
    private var restartBackoff: UInt64
    private var exitCode: Int32 = 0
    private var everStarted = false

    public init(config: Config) {
        self.config = config
        self.restartBackoff = config.restartBackoffInitial
    }

    public var current: Generation? { currentNumber.flatMap(generation) }
    public var pending: Generation? { pendingNumber.flatMap(generation) }

    public func generation(_ n: Int) -> Generation? { generations.first { $0.number == n } }

    /// The earliest instant at which `deadlinePassed` must be delivered, nil when nothing is pending.
    public var nextDeadline: Instant? {
        var all: [Instant] = generations.compactMap { $0.state == .starting ? $0.readyDeadline : nil }
        all += generations.compactMap { $0.killDeadline }
        all += generations.compactMap { $0.handoverDeadline }
        if let restartAt { all.append(restartAt) }
        return all.min()
    }

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        switch event {
        case .started:
            return spawnNext()
        case .spawned(let n, let pid):
            return spawned(n, pid: pid, now: now)
        case .spawnFailed(let n, let reason, let code):
            return spawnFailed(n, reason: reason, code: code, now: now)
        case .hangup:
            return hangup(now: now)
        case .ready(let n):
            return ready(n, now: now)
        case .childExited(let pid, let status):
            return childExited(pid, status: status, now: now)
        case .terminate(let sig):
            return terminate(sig, now: now)
        case .forward(let sig):
            guard let cur = current else { return [.log("no running generation to forward signal \(sig) to")] }
            return [.signal(sig, pid: cur.pid)]
        case .queueDrained(let n):
            return handOver(n, now: now, why: nil)
        case .deadlinePassed:
            return deadlinesPassed(now: now)
        }
    }

    // MARK: transitions

    private mutating func spawnNext() -> [Action] {
        let n = nextNumber
        nextNumber += 1
        return [.spawn(generation: n)]
    }

    private mutating func spawned(_ n: Int, pid: Int32, now: Instant) -> [Action] {
        everStarted = true
        generations.append(Generation(number: n, pid: pid, state: .starting, startedAt: now,
                                      readyDeadline: now + config.readyTimeout, killDeadline: nil))
        var actions: [Action] = []
        if currentNumber == nil {
            currentNumber = n
            actions.append(.log("generation \(n) started, pid \(pid)"))
        } else {
            pendingNumber = n
            actions.append(.pauseGuard)
            actions.append(.log("generation \(n) started, pid \(pid); generation \(currentNumber!) serves until it is ready"))
        }
        if stopping {
            // A TERM raced the spawn: the new process goes the same way as the rest.
            actions.append(.signal(config.reloadSignal, pid: pid))
            setKillDeadline(n, now + config.gracefulTimeout)
        }
        return actions + [.watchReadiness(generation: n), .statusChanged]
    }

    private mutating func spawnFailed(_ n: Int, reason: String, code: Int32, now: Instant) -> [Action] {
        if currentNumber == nil && generations.isEmpty && !everStarted {
            return [.log("cannot start \(reason)"), .exit(code)]
        }
        if currentNumber == nil {
            // A restart after a crash failed to exec: keep backing off.
            return [.log("cannot start generation \(n): \(reason)")] + scheduleRestart(now: now)
        }
        lastReload = ReloadOutcome(generation: n, succeeded: false, reason: "cannot start: \(reason)",
                                   durationNanoseconds: now - reloadStartedAt)
        return [.log("reload failed: cannot start generation \(n): \(reason); generation \(currentNumber!) keeps serving"),
                .guardSocket(generation: currentNumber!), .notifySupervisor("READY=1\nSTATUS=reload failed, generation \(currentNumber!) serving"),
                .statusChanged] + queuedReload(now: now)
    }

    private mutating func hangup(now: Instant) -> [Action] {
        if stopping { return [.log("SIGHUP ignored: stopping")] }
        if pendingNumber != nil {
            hangupQueued = true
            return [.log("SIGHUP during a reload: one more reload follows once generation \(pendingNumber!) is settled")]
        }
        return beginReload(now: now)
    }

    private mutating func beginReload(now: Instant) -> [Action] {
        hangupQueued = false
        reloadStartedAt = now
        if currentNumber == nil {
            restartAt = nil
            return [.log("reload: starting a generation (none is running)")] + spawnNext()
        }
        return [.log("reload: starting generation \(nextNumber)"),
                .notifySupervisor("RELOADING=1\nSTATUS=reloading: starting generation \(nextNumber)")] + spawnNext()
    }

    private mutating func queuedReload(now: Instant) -> [Action] {
        guard hangupQueued, !stopping else { return [] }
        return beginReload(now: now)
    }

    private mutating func ready(_ n: Int, now: Instant) -> [Action] {
        guard let i = generations.firstIndex(where: { $0.number == n }), generations[i].state == .starting else { return [] }
        generations[i].state = .ready
        generations[i].readyDeadline = nil
        let took = now - generations[i].startedAt
        if n == currentNumber {
            restartBackoff = config.restartBackoffInitial
            return [.stopWatchingReadiness(generation: n), .guardSocket(generation: n),
                    .log("generation \(n) is ready (\(formatDuration(took)))"),
                    .notifySupervisor("READY=1\nSTATUS=generation \(n) serving, pid \(generations[i].pid)"), .statusChanged]
        }
        guard n == pendingNumber, let old = currentNumber else { return [.stopWatchingReadiness(generation: n)] }
        currentNumber = n
        pendingNumber = nil
        restartBackoff = config.restartBackoffInitial
        lastReload = ReloadOutcome(generation: n, succeeded: true, reason: "ready", durationNanoseconds: now - reloadStartedAt)
        var actions: [Action] = [.stopWatchingReadiness(generation: n), .guardSocket(generation: n),
                                 .log("generation \(n) is ready (\(formatDuration(took))); retiring generation \(old)")]
        actions += retire(old, now: now, handover: config.handoverNanoseconds > 0)
        actions += [.notifySupervisor("READY=1\nSTATUS=generation \(n) serving, pid \(generations[i].pid)"), .statusChanged]
        return actions + queuedReload(now: now)
    }

    /// Sends the reload signal and starts the graceful timeout; with `handover`, first waits for the
    /// generation's listener to hand over what is queued (the path already leads to its successor).
    private mutating func retire(_ n: Int, now: Instant, handover: Bool = false) -> [Action] {
        guard let i = generations.firstIndex(where: { $0.number == n }) else { return [] }
        generations[i].state = .draining
        generations[i].readyDeadline = nil
        if handover {
            generations[i].handoverDeadline = now + config.handoverNanoseconds
            return [.stopWatchingReadiness(generation: n), .awaitQueueDrain(generation: n)]
        }
        if generations[i].killDeadline == nil { generations[i].killDeadline = now + config.gracefulTimeout }
        return [.stopWatchingReadiness(generation: n), .signal(config.reloadSignal, pid: generations[i].pid)]
    }

    /// The old listener is empty (or the wait ran out): the reload signal goes out now.
    private mutating func handOver(_ n: Int, now: Instant, why: String?) -> [Action] {
        guard let i = generations.firstIndex(where: { $0.number == n }), generations[i].handoverDeadline != nil else { return [] }
        generations[i].handoverDeadline = nil
        generations[i].killDeadline = generations[i].killDeadline ?? now + config.gracefulTimeout
        return (why.map { [Action.log($0)] } ?? []) + [.signal(config.reloadSignal, pid: generations[i].pid)]
    }

    private mutating func rollBack(_ n: Int, why: String, now: Instant) -> [Action] {
        pendingNumber = nil
        lastReload = ReloadOutcome(generation: n, succeeded: false, reason: why, durationNanoseconds: now - reloadStartedAt)
        let keeper = currentNumber.map { "generation \($0) keeps serving" } ?? "no generation is serving"
        var actions: [Action] = [.log("reload failed: generation \(n) \(why); rolling back, \(keeper)")]
        if generation(n) != nil { actions += retire(n, now: now) }
        if let c = currentNumber {
            actions += [.guardSocket(generation: c), .notifySupervisor("READY=1\nSTATUS=reload failed, generation \(c) serving")]
        }
        return actions + [.statusChanged] + queuedReload(now: now)
    }

    private mutating func childExited(_ pid: Int32, status: ProcessEnd, now: Instant) -> [Action] {
        guard let i = generations.firstIndex(where: { $0.pid == pid }) else {
            return [.log("reaped pid \(pid) (\(status)): a descendant left to hupwatch")]
        }
        let gen = generations.remove(at: i)
        // Whatever the main process left in its group goes with it.
        var actions: [Action] = [.stopWatchingReadiness(generation: gen.number), .killGroup(pgid: pid)]
        if gen.number == pendingNumber {
            actions += rollBack(gen.number, why: "exited before it was ready (\(status))", now: now)
        } else if gen.number == currentNumber {
            currentNumber = nil
            exitCode = status.shellCode
            if stopping {
                actions.append(.log("generation \(gen.number) exited (\(status))"))
            } else if let p = pendingNumber {
                // Its replacement is already starting: it becomes the one we wait for.
                currentNumber = p
                pendingNumber = nil
                actions.append(.log("generation \(gen.number) exited (\(status)) during a reload; generation \(p) takes over"))
            } else if config.onExit == .exit {
                actions.append(.log("generation \(gen.number) exited (\(status)); hupwatch exits with status \(exitCode)"))
                actions.append(.pauseGuard)
                actions += beginStop(signal: config.reloadSignal, now: now)
            } else {
                actions.append(.log("generation \(gen.number) exited (\(status))"))
                // Its listener died with it: the guard must not put that path back while the restart rebinds it.
                actions.append(.pauseGuard)
                actions += scheduleRestart(now: now)
            }
        } else {
            let drained = now - gen.startedAt
            actions.append(.log("generation \(gen.number) exited (\(status)), \(formatDuration(drained)) after it started"))
        }
        actions.append(.statusChanged)
        if stopping && generations.isEmpty { actions.append(.exit(exitCode)) }
        return actions
    }

    private mutating func scheduleRestart(now: Instant) -> [Action] {
        restartAt = now + restartBackoff
        let wait = restartBackoff
        restartBackoff = min(restartBackoff * 2, config.restartBackoffMax)
        return [.log("restarting in \(formatDuration(wait))")]
    }

    private mutating func terminate(_ sig: Int32, now: Instant) -> [Action] {
        var actions: [Action] = []
        if !stopping { actions += [.notifySupervisor("STOPPING=1"), .pauseGuard] }
        actions += beginStop(signal: sig, now: now)
        if generations.isEmpty { actions.append(.exit(exitCode)) }
        return actions
    }

    private mutating func beginStop(signal sig: Int32, now: Instant) -> [Action] {
        stopping = true
        hangupQueued = false
        restartAt = nil
        var actions: [Action] = []
        for g in generations {
            actions.append(.signal(sig, pid: g.pid))
            setKillDeadline(g.number, now + config.gracefulTimeout)
            if let i = generations.firstIndex(where: { $0.number == g.number }) { generations[i].handoverDeadline = nil }
        }
        return actions
    }

    private mutating func setKillDeadline(_ n: Int, _ at: Instant) {
        guard let i = generations.firstIndex(where: { $0.number == n }) else { return }
        generations[i].killDeadline = min(generations[i].killDeadline ?? at, at)
    }

    private mutating func deadlinesPassed(now: Instant) -> [Action] {
        var actions: [Action] = []
        for g in generations {
            if let h = g.handoverDeadline, h <= now {
                actions += handOver(g.number, now: now, why: "generation \(g.number)'s listener still had connections queued after \(formatDuration(config.handoverNanoseconds)); sending the reload signal anyway")
            }
            if let k = g.killDeadline, k <= now {
                actions.append(.log("generation \(g.number) (pid \(g.pid)) still running \(formatDuration(config.gracefulTimeout)) after it was told to stop: SIGKILL to its process group"))
                actions.append(.killGroup(pgid: g.pid))
                if let i = generations.firstIndex(where: { $0.number == g.number }) { generations[i].killDeadline = nil }
            }
            if g.state == .starting, let r = g.readyDeadline, r <= now {
                if g.number == pendingNumber {
                    actions += rollBack(g.number, why: "was not ready within \(formatDuration(config.readyTimeout))", now: now)
                } else if let i = generations.firstIndex(where: { $0.number == g.number }) {
                    generations[i].readyDeadline = nil
                    actions.append(.log("generation \(g.number) has not reported ready within \(formatDuration(config.readyTimeout)); it keeps running"))
                }
            }
        }
        if let r = restartAt, r <= now {
            restartAt = nil
            reloadStartedAt = now
            actions += spawnNext()
        }
        return actions
    }
}
