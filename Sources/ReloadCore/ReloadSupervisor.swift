@_exported import Common

/// What the last reloads came to, for logs and the status file.
public struct ReloadOutcome: Equatable, Sendable {
    /// Reloads are numbered from 1 in the order they start.
    public let id: Int
    public let generation: Int
    public let succeeded: Bool
    public let reason: String
    public let durationNanoseconds: UInt64
}

/// The reload supervisor: the whole of hupwatch's decision making, as a value.
///
/// One `Mode` says what hupwatch as a whole is doing; each generation carries its own `Phase`. Readiness
/// policy, probe cadence, the hand-over of the old listener and what the socket guard should do are all
/// decided here and come out as actions; the runner performs the I/O and feeds each result back as one
/// event. No fork, clock or I/O inside, so every sequence can be replayed in a test.
public struct ReloadSupervisor: Sendable {
    public struct Config: Sendable {
        public var gracefulTimeout: UInt64
        public var readyTimeout: UInt64
        public var reloadSignal: Int32
        public var onExit: OnExit
        public var readiness: ReadinessRule = .auto(probe: false)
        /// How the socket clients connect to survives a reload (and who points the public path).
        public var protection: Protection = .none
        /// A crash within this long of the previous restart is a crash loop: restarts then back off.
        public var crashLoopWindow: UInt64 = 10 * nanosecondsPerSecond
        public var restartBackoffInitial: UInt64 = Backoff.restart.initialNanoseconds
        public var restartBackoffMax: UInt64 = Backoff.restart.maximumNanoseconds
        /// Rewrite and rebind modes: the reload signal waits (up to the graceful timeout) for the old
        /// listener's accept queue to empty: servers that close their listener on TERM reset what is queued.
        public var handoverCheckInterval: UInt64 = 2_000_000
        /// How often a hand-over still waiting says so.
        public var handoverReportInterval: UInt64 = nanosecondsPerSecond
        /// How long the old listener's queue must stay empty before the reload signal goes.
        public var handoverSettle: UInt64 = 100_000_000
        /// Probe cadence: fast while a start is expected, slow for a generation silent after `probeSlowAfter`.
        public var probeFastInterval: UInt64 = 10_000_000
        public var probeSlowInterval: UInt64 = 200_000_000
        public var probeSlowAfter: UInt64 = 5 * nanosecondsPerSecond
        /// A probe that has not answered in this long counts as "not ready" and is cancelled.
        public var probeTimeout: UInt64 = nanosecondsPerSecond
        /// `auto` with nothing to probe and no sd_notify: the generation is called ready after this.
        public var warmup: UInt64 = nanosecondsPerSecond

        public init(gracefulTimeout: UInt64, readyTimeout: UInt64, reloadSignal: Int32, onExit: OnExit) {
            self.gracefulTimeout = gracefulTimeout
            self.readyTimeout = readyTimeout
            self.reloadSignal = reloadSignal
            self.onExit = onExit
        }
    }

    /// What hupwatch as a whole is doing. Each case carries exactly the facts that exist in it.
    public enum Mode: Equatable, Sendable {
        /// Before `.started`.
        case idle
        /// One generation serves (it may still be starting if it is the only one and past its ready timeout).
        case running(serving: Int)
        /// `pending` is starting; `serving` (if any) keeps serving until it is ready. `queued`: a HUP came
        /// after `pending` began starting, so one more reload follows once it is settled.
        case reloading(serving: Int?, pending: Int, queued: Bool)
        /// The serving generation exited (`--on-exit restart`): the next one starts at this instant.
        case restarting(at: Instant)
        /// Every generation was told to stop; hupwatch exits with `code` once none is left.
        case stopping(code: Int32, serving: Int?)
        case exited(Int32)
    }

    /// A generation's own lifecycle.
    public enum Phase: Equatable, Sendable {
        /// Waiting to be ready; past `readyBy` it is rolled back (nil: kept regardless, it is all there is).
        case starting(readyBy: Instant?)
        /// Ready by its rule; `.publish` asked for the public path to lead to it (rewrite mode), and its
        /// answer is awaited. Not ready until that succeeds.
        case publishing
        case ready
        /// Retiring: the reload signal waits until its listener's queue has stayed empty for the settle
        /// time, or `signalBy`.
        case handingOver(Handover)
        /// Told to stop; its process group gets SIGKILL at `killAt`.
        case draining(killAt: Instant)
        /// SIGKILL was sent; waiting for it to be reaped.
        case killed
    }

    /// A retiring generation's hand-over of its listener's queue.
    public struct Handover: Equatable, Sendable {
        /// The reload signal goes at this instant whatever the queue holds (the graceful timeout).
        public var signalBy: Instant
        /// The next queue reading; nil while one is in flight.
        public var nextCheckAt: Instant?
        /// A line says it still waits at the first reading after this.
        public var reportAt: Instant
        /// The queue read empty at this instant and every reading since. A worker that has just taken
        /// a connection off the queue has not yet marked itself busy (uWSGI sets `in_request` after
        /// accept), and a client that found the path before it moved may still be connecting: a queue
        /// empty once is not yet handed over.
        public var emptySince: Instant?
    }

    /// Where a starting generation's readiness probe is.
    public enum Probe: Equatable, Sendable {
        case none
        case due(at: Instant)
        case inFlight(giveUpAt: Instant)
    }

    /// One instance of the wrapped command.
    public struct Generation: Equatable, Sendable {
        public let number: Int
        public let pid: Int32
        public let startedAt: Instant
        public var phase: Phase
        /// When it became ready; nil if it never was.
        public var readyAt: Instant?
        /// What it said and what probes saw: the readiness rule reads this.
        public var evidence: Evidence = []
        public var probe: Probe = .none
    }

    /// What the socket guard should do.
    public enum GuardCommand: Equatable, Sendable {
        /// Keep the path leading to this generation's listener.
        case follow(generation: Int)
        /// A generation is (re)binding the path: do not fight it.
        case hold
        /// No listener is worth restoring (stopping, or nothing serves).
        case off
    }

    public enum Event: Equatable, Sendable {
        case started
        case spawned(generation: Int, pid: Int32)
        case spawnFailed(generation: Int, reason: String, shellCode: Int32)
        case hangup
        /// `hupwatch reload` asked over the control socket; `token` names the caller in the answer.
        case reloadRequested(token: Int)
        /// A datagram on the generation's NOTIFY_SOCKET from one of its processes (the runner checks the sender).
        case notified(generation: Int, ready: Bool)
        /// The answer to `.probe`: the generation's listener accepted (and, for http:, answered 2xx).
        case probed(generation: Int, accepting: Bool)
        /// The answer to `.checkQueue`: connections waiting on the retiring listener (nil: unknown or gone).
        case queueChecked(generation: Int, queued: Int?)
        /// The answer to `.publish`.
        case published(generation: Int, PublishResult)
        case childExited(pid: Int32, status: ProcessEnd)
        case terminate(signal: Int32)
        case forward(signal: Int32)
        /// The instant `nextDeadline` named has come.
        case deadlinePassed
    }

    public enum Action: Equatable, Sendable {
        /// Start the command; answer with `.spawned` or `.spawnFailed`.
        case spawn(generation: Int)
        /// One non-blocking readiness probe; answer with `.probed` (now or later).
        case probe(generation: Int)
        /// Abandon the probe round still in flight; its answer, if any comes, is ignored.
        case cancelProbe(generation: Int)
        /// The generation is no longer probed (ready, retiring, stopping, or speaking sd_notify): release
        /// whatever the probe holds.
        case stopProbing(generation: Int)
        /// Read the generation's listen queue; answer with `.queueChecked`.
        case checkQueue(generation: Int)
        /// Rewrite mode: point the public path at the generation's own listener, never destroying whatever
        /// else is at it; answer with `.published`.
        case publish(generation: Int)
        /// Rewrite mode, on a rollback: the public path must lead to this (serving) generation's listener;
        /// put it back if it went missing, again without destroying anything else.
        case putBack(generation: Int)
        /// Rewrite mode: the generation is gone; remove its private path.
        case removePrivate(generation: Int)
        /// The generation is gone: drop its notify socket and probe.
        case forget(generation: Int)
        /// Nothing the generation says on its NOTIFY_SOCKET matters any more (it is ready, or retiring):
        /// close the socket.
        case closeNotify(generation: Int)
        case signal(Int32, pid: Int32)
        /// SIGKILL to the generation's process group (its pgid is its pid).
        case killGroup(pgid: Int32)
        /// Processes handed to hupwatch (it is their subreaper) that belong to none of these generations,
        /// as their environment's HUPWATCH_GENERATION says: a gone generation's daemonized helpers (setsid).
        /// SIGKILL them; their own children come back as further reaped descendants.
        case killOrphans(keeping: [Int])
        case setGuard(GuardCommand)
        case log(String)
        case debug(String)
        /// An sd_notify line for hupwatch's own supervisor (READY=1, RELOADING=1, STOPPING=1, STATUS=...).
        case notifySupervisor(String)
        /// The caller's request is (or joins) reload `id`.
        case reloadAccepted(token: Int, id: Int)
        case reloadRefused(token: Int, reason: String)
        /// Reload `id` is over, succeeded or rolled back.
        case reloadFinished(ReloadOutcome)
        case statusChanged
        case exit(Int32)
    }

    public let config: Config
    public private(set) var mode: Mode = .idle
    public private(set) var generations: [Generation] = []
    /// The last 20 reloads, oldest first.
    public private(set) var reloads: [ReloadOutcome] = []
    /// Some generation said READY=1: later ones are expected to speak sd_notify too (`auto`).
    public private(set) var learnedNotify = false
    private var nextNumber = 1
    /// The id the next reload to start gets.
    private var nextReloadID = 1
    /// Which reload each generation was started by (nil entries: the first start, a restart).
    private var reloadOfGeneration: [Int: Int] = [:]
    private var everSpawned = false
    private var reloadStartedAt: Instant = 0
    private var lastRestartAt: Instant?
    private var restartBackoff: UInt64
    /// The status the serving generation ended with when it exited during a reload: hupwatch exits with
    /// it if the reload then fails, or if it is told to stop before a successor is ready.
    private var servingEnd: Int32?
    /// How each generation now publishing met its rule, for the line saying it is ready.
    private var publishingHow: [Int: String] = [:]

    public init(config: Config) {
        self.config = config
        self.restartBackoff = config.restartBackoffInitial
    }

    // MARK: queries

    public func generation(_ n: Int) -> Generation? { generations.first { $0.number == n } }

    public var servingNumber: Int? {
        switch mode {
        case .running(let s): return s
        case .reloading(let s, _, _), .stopping(_, let s): return s
        default: return nil
        }
    }

    public var pendingNumber: Int? {
        if case .reloading(_, let p, _) = mode { return p }
        return nil
    }

    public var serving: Generation? { servingNumber.flatMap(generation) }
    public var lastReload: ReloadOutcome? { reloads.last }

    public var isStopping: Bool {
        switch mode {
        case .stopping, .exited: return true
        default: return false
        }
    }

    /// The earliest instant at which `deadlinePassed` must be delivered; nil when nothing is pending.
    public var nextDeadline: Instant? {
        var all: [Instant] = []
        for g in generations {
            switch g.phase {
            case .starting(let r): if let r { all.append(r) }
            // The progress line needs no deadline of its own: it goes with the queue check after `reportAt`.
            case .handingOver(let h): all.append(h.nextCheckAt.map { min($0, h.signalBy) } ?? h.signalBy)
            case .draining(let k): all.append(k)
            case .ready, .killed, .publishing: break
            }
            switch g.probe {
            case .due(let at): all.append(at)
            case .inFlight(let giveUp): all.append(giveUp)
            case .none: break
            }
            if let w = warmupEnd(g) { all.append(w) }
        }
        if case .restarting(let at) = mode { all.append(at) }
        return all.min()
    }

    // MARK: events

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        if case .exited = mode { return [.debug("event after exit ignored: \(event)")] }
        switch event {
        case .started:
            guard mode == .idle else { return [] }
            return beginReload(serving: nil, now: now, announce: false)
        case .spawned(let n, let pid):
            return spawned(n, pid: pid, now: now)
        case .spawnFailed(let n, let reason, let code):
            return spawnFailed(n, reason: reason, code: code, now: now)
        case .hangup:
            return hangup(now: now, via: "SIGHUP")
        case .reloadRequested(let token):
            return reloadRequested(token: token, now: now)
        case .notified(let n, let ready):
            return notified(n, ready: ready, now: now)
        case .probed(let n, let accepting):
            return probed(n, accepting: accepting, now: now)
        case .queueChecked(let n, let queued):
            return queueChecked(n, queued: queued, now: now)
        case .published(let n, let result):
            return published(n, result, now: now)
        case .childExited(let pid, let status):
            return childExited(pid, status: status, now: now)
        case .terminate(let sig):
            return terminate(sig, now: now)
        case .forward(let sig):
            guard let g = serving ?? pendingNumber.flatMap(generation) else {
                return [.log("no running generation to forward \(SignalName.name(sig)) to")]
            }
            return [.signal(sig, pid: g.pid)]
        case .deadlinePassed:
            return deadlinesPassed(now: now)
        }
    }

    // MARK: starting generations

    private mutating func beginReload(serving: Int?, now: Instant, announce: Bool = true) -> [Action] {
        let n = nextNumber
        nextNumber += 1
        if announce {
            reloadOfGeneration[n] = nextReloadID
            nextReloadID += 1
        }
        reloadStartedAt = now
        mode = .reloading(serving: serving, pending: n, queued: false)
        var actions: [Action] = []
        if announce {
            actions.append(.log(serving == nil ? "reload: starting generation \(n) (none is running)"
                                               : "reload: starting generation \(n)"))
            if serving != nil {
                actions.append(.notifySupervisor("RELOADING=1\nSTATUS=reloading: starting generation \(n)"))
            }
        }
        // The new generation may rebind the path: the guard must not put the old listener back meanwhile.
        if serving != nil { actions.append(.setGuard(.hold)) }
        return actions + [.spawn(generation: n)]
    }

    private mutating func spawned(_ n: Int, pid: Int32, now: Instant) -> [Action] {
        guard pendingNumber == n else {
            // Cannot happen with a runner that answers each spawn at once; never leave a child unwatched.
            generations.append(Generation(number: n, pid: pid, startedAt: now, phase: .draining(killAt: now + config.gracefulTimeout)))
            return [.log("generation \(n) (pid \(pid)) started when none was expected; stopping it"),
                    .signal(config.reloadSignal, pid: pid), .statusChanged]
        }
        everSpawned = true
        var g = Generation(number: n, pid: pid, startedAt: now, phase: .starting(readyBy: now + config.readyTimeout))
        g.probe = usesProbe(g) ? .due(at: now) : .none
        generations.append(g)
        let serving = servingNumber.map { "; generation \($0) serves until it is ready" } ?? ""
        return [.log("generation \(n) started, pid \(pid)\(serving)"), .statusChanged]
    }

    private mutating func spawnFailed(_ n: Int, reason: String, code: Int32, now: Instant) -> [Action] {
        guard case .reloading(let s, n, let queued) = mode else { return [] }
        if !everSpawned {
            mode = .exited(code)
            return [.log("cannot start \(reason)"), .exit(code)]
        }
        return failed(n, serving: s, queued: queued, why: "cannot start: \(reason)", code: code, now: now)
    }

    /// Rewrite mode points the public path at a generation's own listener, so whatever else its rule
    /// asks, a probe must also have seen that listener accept.
    private var listenerMustAccept: Bool { config.protection.rewrites }

    /// Whether this generation is probed: its rule asks for it, or rewrite mode must see its listener.
    private func usesProbe(_ g: Generation) -> Bool {
        if g.evidence.contains(.accepted) { return false }
        if listenerMustAccept { return true }
        switch config.readiness {
        case .probe: return true
        case .auto(let probe): return probe && !learnedNotify && !g.evidence.contains(.spoke)
        case .notify, .delay: return false
        }
    }

    /// When a generation is called ready without any word from it (`delay:`, or `auto`'s warm-up).
    private func warmupEnd(_ g: Generation) -> Instant? {
        guard case .starting = g.phase, !g.evidence.contains(.timeElapsed) else { return nil }
        switch config.readiness {
        case .delay(let d): return g.startedAt + d
        case .auto(false) where !listenerMustAccept && !learnedNotify && !g.evidence.contains(.spoke): return g.startedAt + config.warmup
        default: return nil
        }
    }

    /// The readiness rule, over the evidence. An explicit mode is the operator's word: `http:` means the
    /// health check must pass, whatever the generation says on its NOTIFY_SOCKET. Only `notify` and
    /// `auto` take READY=1.
    private func isReady(_ g: Generation, now: Instant) -> Bool {
        let e = g.evidence
        if listenerMustAccept && !e.contains(.accepted) { return false }
        switch config.readiness {
        case .notify: return e.contains(.saidReady)
        case .delay(let d): return e.contains(.timeElapsed) || now >= g.startedAt + d
        case .probe: return e.contains(.accepted)
        case .auto(let probe):
            if e.contains(.saidReady) { return true }
            if learnedNotify || e.contains(.spoke) { return false }
            return probe || listenerMustAccept ? e.contains(.accepted) : (e.contains(.timeElapsed) || now >= g.startedAt + config.warmup)
        }
    }

    private mutating func notified(_ n: Int, ready: Bool, now: Instant) -> [Action] {
        guard let i = index(n), case .starting = generations[i].phase else { return [] }
        generations[i].evidence.insert(.spoke)
        if ready {
            learnedNotify = true
            generations[i].evidence.insert(.saidReady)
        }
        if isReady(generations[i], now: now) { return becameReady(i, how: ready ? "READY=1" : "", now: now) }
        // A generation that speaks sd_notify will say READY=1: `auto` stops guessing from the socket.
        if generations[i].probe != .none, !usesProbe(generations[i]) {
            generations[i].probe = .none
            return [.stopProbing(generation: n)]
        }
        return []
    }

    private mutating func probed(_ n: Int, accepting: Bool, now: Instant) -> [Action] {
        guard let i = index(n), case .starting = generations[i].phase, case .inFlight = generations[i].probe else { return [] }
        if accepting {
            generations[i].evidence.insert(.accepted)
            generations[i].probe = .none
            if isReady(generations[i], now: now) { return becameReady(i, how: "its listener accepts", now: now) }
            return [.stopProbing(generation: n), .debug("generation \(n)'s listener accepts; waiting for READY=1")]
        }
        generations[i].probe = .due(at: now + probeInterval(generations[i], now: now))
        return []
    }

    /// Fast while a start is expected, slower after `probeSlowAfter`; a generation kept past its ready
    /// timeout (nothing else serves) is looked at once every 5 s, so a server that never comes up does not
    /// keep hupwatch busy.
    private func probeInterval(_ g: Generation, now: Instant) -> UInt64 {
        if case .starting(readyBy: nil) = g.phase { return 5 * nanosecondsPerSecond }
        return now - g.startedAt < config.probeSlowAfter ? config.probeFastInterval : config.probeSlowInterval
    }

    /// The generation meets its readiness rule. In rewrite mode it is not ready until the public path
    /// leads to it: `.publish` asks for that, and `.published` finishes (or rolls back) the take-over.
    private mutating func becameReady(_ i: Int, how: String, now: Instant) -> [Action] {
        let g = generations[i]
        var actions: [Action] = [.stopProbing(generation: g.number), .closeNotify(generation: g.number)]
        generations[i].probe = .none
        guard config.protection.rewrites else { return actions + tookOver(i, how: how, now: now) }
        generations[i].phase = .publishing
        publishingHow[g.number] = how
        return actions + [.publish(generation: g.number)]
    }

    private mutating func published(_ n: Int, _ result: PublishResult, now: Instant) -> [Action] {
        // A late answer for a generation no longer publishing (stopped, exited) changes nothing.
        guard let i = index(n), generations[i].phase == .publishing else { return [.debug("publish answer for generation \(n) ignored: it is not publishing")] }
        let how = publishingHow.removeValue(forKey: n) ?? ""
        switch result {
        case .ok:
            return tookOver(i, how: how, now: now)
        case .failed(let why):
            let reason = "could not be published: \(why)"
            switch mode {
            case .reloading(let s, n, let queued):
                return failed(n, serving: s, queued: queued, why: reason, code: ExitCode.environment, now: now)
            case .running(n):
                // The only generation, kept past its ready timeout: nothing else could serve.
                return failed(n, serving: nil, queued: false, why: reason, code: ExitCode.environment, now: now)
            default:
                return [.log("generation \(n) \(reason)")] + retire(n, now: now)
            }
        }
    }

    /// The generation serves: the reload that started it succeeded, and the one it replaces retires.
    private mutating func tookOver(_ i: Int, how: String, now: Instant) -> [Action] {
        let g = generations[i]
        // Whatever the mode, the reload that started this generation has succeeded.
        var actions = record(g.number, succeeded: true, reason: "ready", now: now)
        generations[i].phase = .ready
        generations[i].readyAt = now
        servingEnd = nil
        let took = formatDuration(now - g.startedAt) + (how.isEmpty ? "" : ", \(how)")
        let serving: [Action] = [.notifySupervisor("READY=1\nSTATUS=generation \(g.number) serving, pid \(g.pid)"), .statusChanged]
        // In rewrite mode the path already leads here (published); the guard keeps it so.
        let follow: [Action] = config.protection.rewrites ? [] : [.setGuard(.follow(generation: g.number))]
        switch mode {
        case .running(g.number):
            // The only generation, kept past its ready timeout, is ready after all.
            return actions + follow + [.log("generation \(g.number) is ready (\(took))")] + serving
        case .reloading(let old, g.number, let queued):
            mode = .running(serving: g.number)
            actions += follow
            if let old {
                actions.append(.log("generation \(g.number) is ready (\(took)); retiring generation \(old)"))
                actions += retire(old, now: now, handover: config.protection.handsOverQueue)
            } else {
                actions.append(.log("generation \(g.number) is ready (\(took))"))
            }
            actions += serving
            if queued { actions += beginReload(serving: g.number, now: now) }
            return actions
        default:
            return actions + [.statusChanged]
        }
    }

    /// The pending generation will not serve: roll back to the serving one, restart, or stop.
    private mutating func failed(_ n: Int, serving: Int?, queued: Bool, why: String, code: Int32, now: Instant) -> [Action] {
        var actions: [Action] = []
        if let i = index(n) { actions += retire(generations[i].number, now: now) }
        actions += record(n, succeeded: false, reason: why, now: now)
        if let s = serving {
            mode = .running(serving: s)
            actions += [.log("reload failed: generation \(n) \(why); rolling back, generation \(s) keeps serving"),
                        follow(s),
                        .notifySupervisor("READY=1\nSTATUS=reload failed, generation \(s) serving"), .statusChanged]
            // The HUP that came meanwhile asked for a newer release than the one that failed.
            if queued { actions += beginReload(serving: s, now: now) }
            return actions
        }
        if queued {
            return actions + [.log("generation \(n) \(why); no generation is serving")] + beginReload(serving: nil, now: now) + [.statusChanged]
        }
        if config.onExit == .exit {
            // The serving generation ended during this reload: its status is the one to exit with.
            let code = servingEnd ?? code
            actions.append(.log("generation \(n) \(why); no generation is serving; hupwatch exits with status \(code)"))
            return actions + beginStop(signal: config.reloadSignal, code: code, serving: nil, now: now)
        }
        actions.append(.setGuard(.off))
        actions.append(.log("generation \(n) \(why); no generation is serving"))
        return actions + scheduleRestart(now: now) + [.statusChanged]
    }

    /// The path must lead to serving generation `s`: the guard follows it, or in rewrite mode the path is
    /// checked and put back (a failed generation never touched it).
    private func follow(_ s: Int) -> Action {
        config.protection.rewrites ? .putBack(generation: s) : .setGuard(.follow(generation: s))
    }

    // MARK: HUP

    /// `via` names what asked (SIGHUP, a control request) in the lines it logs.
    private mutating func hangup(now: Instant, via: String) -> [Action] {
        switch mode {
        case .idle, .exited: return []
        case .stopping: return [.log("\(via) ignored: stopping")]
        case .running(let s): return beginReload(serving: s, now: now)
        case .reloading(let s, let p, let queued):
            if queued { return [.log("\(via) during a reload: a reload after generation \(p) is already queued")] }
            mode = .reloading(serving: s, pending: p, queued: true)
            return [.log("\(via) during a reload: one more reload follows once generation \(p) is settled")]
        case .restarting:
            return beginReload(serving: nil, now: now)
        }
    }

    /// Like a HUP, but the caller learns which reload its request is part of, and later its outcome.
    private mutating func reloadRequested(token: Int, now: Instant) -> [Action] {
        switch mode {
        case .idle, .exited, .stopping:
            return [.reloadRefused(token: token, reason: "hupwatch is stopping")]
        case .running, .restarting:
            let id = nextReloadID
            return hangup(now: now, via: "reload request") + [.reloadAccepted(token: token, id: id)]
        case .reloading:
            // The queued reload is the next to start: it will get the next id.
            return hangup(now: now, via: "reload request") + [.reloadAccepted(token: token, id: nextReloadID)]
        }
    }

    // MARK: retiring

    /// Sends the reload signal and starts the graceful timeout; with `handover`, first waits for the
    /// generation's listener to hand over what is queued (the path already leads to its successor).
    private mutating func retire(_ n: Int, now: Instant, handover: Bool = false) -> [Action] {
        guard let i = index(n) else { return [] }
        var actions: [Action] = generations[i].probe == .none ? [] : [.stopProbing(generation: n)]
        if generations[i].readyAt == nil { actions.append(.closeNotify(generation: n)) }
        generations[i].probe = .none
        publishingHow[n] = nil
        switch generations[i].phase {
        case .starting, .publishing, .ready:
            if handover {
                // Up to the graceful timeout: every queued request is one a client is waiting for.
                generations[i].phase = .handingOver(Handover(signalBy: now + config.gracefulTimeout, nextCheckAt: now,
                                                             reportAt: now + config.handoverReportInterval))
                return actions
            }
            return actions + signalToStop(i, config.reloadSignal, now: now)
        case .handingOver, .draining, .killed:
            return actions
        }
    }

    private mutating func signalToStop(_ i: Int, _ sig: Int32, now: Instant) -> [Action] {
        let deadline = now + config.gracefulTimeout
        switch generations[i].phase {
        case .draining(let k): generations[i].phase = .draining(killAt: min(k, deadline))
        case .killed: return []
        default: generations[i].phase = .draining(killAt: deadline)
        }
        return [.signal(sig, pid: generations[i].pid)]
    }

    private mutating func queueChecked(_ n: Int, queued: Int?, now: Instant) -> [Action] {
        guard let i = index(n), case .handingOver(var h) = generations[i].phase, h.nextCheckAt == nil else { return [] }
        h.nextCheckAt = now + config.handoverCheckInterval
        if let q = queued, q > 0 {
            var actions: [Action] = []
            if h.reportAt <= now {
                actions.append(.log("generation \(n)'s listener has \(q) connection(s) still queued; the reload signal waits until they are accepted (at most \(formatDuration(h.signalBy > now ? h.signalBy - now : 0)) more)"))
                h.reportAt = now + config.handoverReportInterval
            }
            h.emptySince = nil
            generations[i].phase = .handingOver(h)
            return actions
        }
        // Empty (or the listener is gone: nil): empty long enough, the queue is handed over.
        let since = h.emptySince ?? now
        if queued != nil, now - since < config.handoverSettle {
            h.emptySince = since
            h.nextCheckAt = min(since + config.handoverSettle, h.signalBy)
            generations[i].phase = .handingOver(h)
            return []
        }
        return [.debug("generation \(n)'s listener is empty: sending the reload signal")]
            + signalToStop(i, config.reloadSignal, now: now)
    }

    // MARK: exits

    private mutating func childExited(_ pid: Int32, status: ProcessEnd, now: Instant) -> [Action] {
        guard let i = generations.firstIndex(where: { $0.pid == pid }) else {
            // A descendant handed to us died: its own children are ours now.
            return [.debug("reaped pid \(pid) (\(status)): a descendant left to hupwatch"), .killOrphans(keeping: generations.map(\.number))]
        }
        let gen = generations.remove(at: i)
        // Whatever the main process left in its group goes with it, and whatever left the group too.
        var actions: [Action] = [.forget(generation: gen.number), .killGroup(pgid: pid), .killOrphans(keeping: generations.map(\.number))]
        // Its private path is the core's to remove, whatever still holds the listener (a worker about to die).
        if config.protection.rewrites { actions.append(.removePrivate(generation: gen.number)) }
        publishingHow[gen.number] = nil
        if gen.readyAt == nil, !(pendingNumber == gen.number) {
            // Not the pending one (its failure is told below, with the rollback): a reload it realized is over.
            actions += record(gen.number, succeeded: false, reason: "exited before it was ready (\(status))", now: now)
        }
        switch mode {
        case .reloading(let s, gen.number, let queued):
            actions += failed(gen.number, serving: s, queued: queued, why: "exited before it was ready (\(status))",
                              code: status.shellCode, now: now)
        case .reloading(gen.number, let p, let queued) where handingOverPredecessor != nil:
            // The path led to the dead listener; the one it replaced still serves its queue: back to it.
            let back = handingOverPredecessor!
            mode = .reloading(serving: back, pending: p, queued: queued)
            actions.append(.log("generation \(gen.number) exited (\(status)) during a reload; generation \(back) serves again until generation \(p) is ready"))
            actions += reinstate(back)
        case .reloading(gen.number, let p, let queued):
            mode = .reloading(serving: nil, pending: p, queued: queued)
            servingEnd = status.shellCode
            actions += [.log("generation \(gen.number) exited (\(status)) during a reload; generation \(p) takes over once ready"),
                        .setGuard(.hold)]
        case .running(gen.number) where config.onExit == .restart && handingOverPredecessor != nil:
            // Published moments ago, it died while the generation it replaced still hands over its queue
            // (alive, its listener open, not yet signalled): the path goes back there at once, that
            // generation serves again, and a new one is started to take over from it.
            let back = handingOverPredecessor!
            mode = .running(serving: back)
            actions.append(.log("generation \(gen.number) exited (\(status)); generation \(back) serves again"))
            actions += reinstate(back) + restartBeside(back, now: now)
        case .running(gen.number):
            if config.onExit == .exit {
                actions.append(.log("generation \(gen.number) exited (\(status)); hupwatch exits with status \(status.shellCode)"))
                actions += beginStop(signal: config.reloadSignal, code: status.shellCode, serving: nil, now: now)
            } else {
                // Its listener died with it: do not put that path back.
                actions.append(.setGuard(.off))
                actions.append(.log("generation \(gen.number) exited (\(status))"))
                actions += scheduleRestart(now: now)
            }
        case .stopping(_, gen.number):
            mode = .stopping(code: status.shellCode, serving: nil)
            actions.append(.log("generation \(gen.number) exited (\(status))"))
        default:
            if gen.readyAt == nil {
                actions.append(.log("generation \(gen.number) exited before it was ready (\(status))"))
            } else {
                actions.append(.log("generation \(gen.number) exited (\(status)), \(formatDuration(now - gen.startedAt)) after it started"))
            }
        }
        if case .exited = mode { return actions }
        return actions + [.statusChanged] + exitIfDone()
    }

    /// The newest generation still handing over its queue, published before (so rewrite mode can point the
    /// path back at its listener) and not yet told to stop: the one to serve again if its successor dies.
    /// Only in rewrite mode: a rebinding command's old listener has no path left to put back.
    private var handingOverPredecessor: Int? {
        guard config.protection.rewrites else { return nil }
        return generations.filter { g in
            guard g.readyAt != nil, case .handingOver = g.phase else { return false }
            return true
        }.map(\.number).max()
    }

    /// A generation handing over serves again: it is no longer retiring, and the path leads back to it.
    private mutating func reinstate(_ n: Int) -> [Action] {
        guard let i = index(n) else { return [] }
        generations[i].phase = .ready
        return [follow(n), .statusChanged]
    }

    /// `--on-exit restart` while a generation serves: the restart is a reload from it, at once. No back-off
    /// is needed: clients are served meanwhile, and each try waits for the new generation to be ready.
    private mutating func restartBeside(_ serving: Int, now: Instant) -> [Action] {
        [.log("restarting now (generation \(serving) serves until the new one is ready)")]
            + beginReload(serving: serving, now: now, announce: false)
    }

    /// The first restart after a while is immediate; a crash loop backs off, doubling up to the maximum.
    private mutating func scheduleRestart(now: Instant) -> [Action] {
        var wait: UInt64 = 0
        if let last = lastRestartAt, now < last || now - last < config.crashLoopWindow {
            wait = restartBackoff
            restartBackoff = min(restartBackoff * 2, config.restartBackoffMax)
        } else {
            restartBackoff = config.restartBackoffInitial
        }
        lastRestartAt = now + wait
        if wait == 0 { return [.log("restarting now")] + beginReload(serving: nil, now: now, announce: false) }
        mode = .restarting(at: now + wait)
        return [.log("restarting in \(formatDuration(wait)) (crash loop)")]
    }

    // MARK: stopping

    private mutating func terminate(_ sig: Int32, now: Instant) -> [Action] {
        var actions: [Action] = []
        if !isStopping { actions.append(.notifySupervisor("STOPPING=1")) }
        actions.append(.log("received \(SignalName.name(sig)): stopping every generation"))
        if case .stopping(let code, let serving) = mode { return actions + beginStop(signal: sig, code: code, serving: serving, now: now) }
        // A generation still starting with nothing else serving is the one whose status hupwatch exits
        // with; if the serving one already ended during this reload, its status.
        if let end = servingEnd { return actions + beginStop(signal: sig, code: end, serving: nil, now: now) }
        return actions + beginStop(signal: sig, code: 0, serving: servingNumber ?? pendingNumber, now: now)
    }

    /// Tells every generation to stop; `serving` is the one whose status hupwatch will exit with.
    private mutating func beginStop(signal sig: Int32, code: Int32, serving: Int?, now: Instant) -> [Action] {
        var actions: [Action] = [.setGuard(.off)]
        // Reloads still under way end here; their callers learn it.
        for n in reloadOfGeneration.keys.sorted() { actions += record(n, succeeded: false, reason: "hupwatch is stopping", now: now) }
        mode = .stopping(code: code, serving: serving)
        for i in generations.indices {
            if generations[i].probe != .none { actions.append(.stopProbing(generation: generations[i].number)) }
            generations[i].probe = .none
            actions += signalToStop(i, sig, now: now)
        }
        return actions + [.statusChanged] + exitIfDone()
    }

    /// Stopping and nothing left: hupwatch exits.
    private mutating func exitIfDone() -> [Action] {
        guard case .stopping(let code, _) = mode, generations.isEmpty else { return [] }
        mode = .exited(code)
        return [.exit(code)]
    }

    // MARK: time

    private mutating func deadlinesPassed(now: Instant) -> [Action] {
        var actions: [Action] = []
        // Each generation's deadlines, by number: actions for one never depend on stale facts of another,
        // since every step re-reads the table.
        for n in generations.map(\.number) {
            guard let i = index(n) else { continue }
            let g = generations[i]
            switch g.probe {
            case .due(let at) where at <= now:
                generations[i].probe = .inFlight(giveUpAt: now + config.probeTimeout)
                actions.append(.probe(generation: n))
            case .inFlight(let giveUp) where giveUp <= now:
                generations[i].probe = .due(at: now + probeInterval(g, now: now))
                actions += [.cancelProbe(generation: n), .debug("generation \(n)'s readiness probe got no answer in \(formatDuration(config.probeTimeout))")]
            default: break
            }
            if let w = warmupEnd(g), w <= now, case .starting = g.phase {
                if isReady(g, now: now) {
                    actions += becameReady(i, how: "after \(formatDuration(w - g.startedAt))", now: now)
                    continue
                }
                // Time is up, but rewrite mode still waits for its listener: the time rule is met.
                generations[i].evidence.insert(.timeElapsed)
            }
            switch g.phase {
            case .starting(let r?) where r <= now:
                actions += readyTimedOut(n, now: now)
            case .handingOver(let h) where h.signalBy <= now:
                actions.append(.log("generation \(n)'s listener still had connections queued after \(formatDuration(config.gracefulTimeout)); sending the reload signal anyway"))
                actions += signalToStop(i, config.reloadSignal, now: now)
            case .handingOver(var h) where h.nextCheckAt.map { $0 <= now } ?? false:
                h.nextCheckAt = nil
                generations[i].phase = .handingOver(h)
                actions.append(.checkQueue(generation: n))
            case .draining(let k) where k <= now:
                generations[i].phase = .killed
                actions.append(.log("generation \(n) (pid \(g.pid)) still running \(formatDuration(config.gracefulTimeout)) after it was told to stop: SIGKILL to its process group"))
                actions.append(.killGroup(pgid: g.pid))
            default: break
            }
        }
        if case .restarting(let at) = mode, at <= now {
            actions += beginReload(serving: nil, now: now, announce: false)
        }
        return actions
    }

    private mutating func readyTimedOut(_ n: Int, now: Instant) -> [Action] {
        guard let i = index(n) else { return [] }
        let why = "was not ready within \(formatDuration(config.readyTimeout))"
        guard case .reloading(let s, n, let queued) = mode else {
            generations[i].phase = .starting(readyBy: nil)
            return [.log("generation \(n) \(why); it keeps running")]
        }
        if s != nil { return failed(n, serving: s, queued: queued, why: why, code: 1, now: now) }
        // Nothing else could serve: keep it, it may still come up; a HUP starts a fresh one.
        generations[i].phase = .starting(readyBy: nil)
        mode = .running(serving: n)
        var actions: [Action] = [.log("generation \(n) \(why); it keeps running, as nothing else serves"), .statusChanged]
        if queued { actions += beginReload(serving: n, now: now) }
        return actions
    }

    // MARK: helpers

    private func index(_ n: Int) -> Int? { generations.firstIndex { $0.number == n } }

    /// Ends the reload that started generation `n`, if a reload did (not the first start or a restart).
    private mutating func record(_ n: Int, succeeded: Bool, reason: String, now: Instant) -> [Action] {
        guard let id = reloadOfGeneration.removeValue(forKey: n) else { return [] }
        let outcome = ReloadOutcome(id: id, generation: n, succeeded: succeeded, reason: reason, durationNanoseconds: now - reloadStartedAt)
        reloads.append(outcome)
        if reloads.count > 20 { reloads.removeFirst(reloads.count - 20) }
        return [.reloadFinished(outcome)]
    }
}
