@_exported import Common

/// Why a worker is on its way out; decides whether and how it is replaced.
public enum RetireReason: String, Sendable {
    case reload = "reload"            // SIGHUP to the master: replace every worker
    case chainReload = "chain reload" // --touch-chain-reload: one worker at a time
    case shrink = "fewer workers"     // SIGTTOU
    case shutdown = "shutdown"
    case maxRequests = "max-requests"
    case lifetime = "max-worker-lifetime"
    case rss = "reload-on-rss"
    case evilRSS = "evil-reload-on-rss"
    case addressSpace = "reload-on-as"
    case evilAddressSpace = "evil-reload-on-as"
    case exception = "reload-on-exception"
    /// The worker could not watch a listener again (epoll_ctl failed): it accepts no more, so it is replaced.
    case listenerLost = "listener lost"
    case harakiri = "harakiri"
    case cheaper = "cheaper"
    case term = "SIGTERM to the worker"
}

/// The limit a retiring worker's SIGKILL deadline came from, named in the line that reports the kill.
public enum KillDeadline: Sendable, Equatable {
    case mercy
    case harakiriGrace
    /// SIGINT/SIGQUIT's stop: `WorkerPool.immediateStopNanoseconds` when --worker-reload-mercy is longer.
    case immediateStop

    var text: String {
        switch self {
        case .mercy: "--worker-reload-mercy"
        case .harakiriGrace: "--harakiri-graceful-timeout"
        case .immediateStop: "the immediate stop's \(WorkerPool.immediateStopNanoseconds / 1_000_000_000) s (SIGINT/SIGQUIT)"
        }
    }
}

/// One worker process as the master sees it.
public struct WorkerSlot: Equatable, Sendable {
    public enum State: String, Sendable { case starting, accepting, retiring }
    /// 1-based id, shown in logs, process names and stats; a slot's id is reused by its replacement.
    public let id: Int
    public var pid: Int32
    public var state: State
    public var startedAt: Instant
    public var retireReason: RetireReason?
    /// When a retiring worker gets SIGKILL (`--worker-reload-mercy`).
    public var killDeadline: Instant?
    public var respawns: Int
    /// --max-worker-lifetime: when this worker is recycled.
    public var recycleAt: Instant?
    public var harakiriFired = false
    /// --evil-reload-on-rss sent SIGKILL: its exit is expected, and it is not killed twice.
    public var evilKilled = false
    /// A sample showed the worker had taken a request: from then on its growth is the app's work, not
    /// what a fresh worker needs (see `evilKill`).
    public var tookRequest = false
    /// Its RSS and address space as it reported ready, before it could take a request (evil limits on).
    public var freshRSSBytes: Int? = nil
    public var freshAddressSpaceBytes: Int? = nil
    /// Which limit `killDeadline` is, for the SIGKILL line.
    public var killDeadlineLimit: KillDeadline = .mercy
    /// This worker's row in the shared scoreboard: reserved by the pool when it decided the fork,
    /// freed when the worker has exited (never while a retiring worker may still write it).
    public var scoreboardIndex: Int = 0
    /// With --lazy-apps, a worker being replaced keeps accepting until its replacement (the same id) is ready,
    /// then retires for this reason: the replacement's import can take seconds, or fail (a broken release).
    public var replacedOnReady: RetireReason? = nil
}

extension RetireReason {
    /// A worker retired for this reason can serve on while its replacement starts (`replacedOnReady`); the
    /// others must stop accepting now (a memory kill, a lost listener, a stop, fewer workers).
    var servesUntilReplaced: Bool {
        switch self {
        case .reload, .chainReload, .maxRequests, .lifetime, .rss, .addressSpace, .exception: true
        default: false
        }
    }
}

/// The swsgi master's decisions about its workers, as a value: events in, actions out.
/// No fork, clock, signals or I/O here: the master loop feeds events and carries out actions.
public struct WorkerPool: Sendable {
    public struct Config: Sendable {
        public var processes: Int
        public var mercyNanoseconds: UInt64
        /// A worker that dies sooner than this after starting counts towards crash-loop throttling.
        public var crashWindowNanoseconds: UInt64 = 1_000_000_000
        /// How a worker that keeps dying young is respawned (the same back-off as hupwatch's restarts).
        public var respawnBackoff = Backoff.restart
        /// Harakiri: 0 grace means SIGKILL at the deadline; else `harakiriGracefulSignal` first.
        public var harakiriGracefulNanoseconds: UInt64 = 0
        public var harakiriGracefulSignal: Int32 = 15
        /// Harakiri fires only while the listen queue holds more than this (0: always fires).
        public var harakiriQueueThreshold = 0
        /// How often an overdue request held off by the queue threshold is looked at again.
        public var harakiriRecheckNanoseconds: UInt64 = 20_000_000
        /// --max-worker-lifetime (0: off) plus worker id times --max-worker-lifetime-delta.
        public var maxLifetimeNanoseconds: UInt64 = 0
        public var lifetimeDeltaNanoseconds: UInt64 = 0
        /// How long a worker's own TERM waits for the master's before it counts as a TERM to that worker alone.
        public var groupTERMWindowNanoseconds: UInt64 = 50_000_000
        /// --evil-reload-on-rss in bytes (0: off): a worker at or above it is SIGKILLed, busy or not, as uWSGI does.
        public var evilRSSLimitBytes = 0
        /// --evil-reload-on-as: SIGKILL a worker whose sampled address space reaches this, 0 = off.
        public var evilAddressSpaceLimitBytes = 0
        /// How often the master samples its workers' RSS for it (uWSGI's collector samples every 3 s and its
        /// master looks every second; a worker growing fast overshoots by what it grows in one period).
        public var rssSampleNanoseconds: UInt64 = 250_000_000
        /// The cheaper busyness algorithm (nil: cheaper off): fed by `.busySampled` every --cheaper-overload.
        public var cheaper: CheaperBusyness.Config? = nil
        /// Each worker loads the app after fork (--lazy-apps): one that ends before it is ready is an app that
        /// cannot load, and respawning it would crash-loop while the listener queues clients for nobody.
        public var workersLoadTheApp = false
        /// Workers wanted at start (--cheaper-initial, else --processes).
        public var initialWorkers: Int? = nil
        /// The fewest workers cheaper may leave (--cheaper; 0: cheaper off).
        public var minimumWorkers = 0
        /// Rows in the shared scoreboard: one per live process, retiring ones included. Sized for
        /// the workers plus several overlapping reloads' worth of retiring ones; when every row is held,
        /// a fork waits for one to free (a retiring worker exits by --worker-reload-mercy at the latest).
        public var scoreboardSlots: Int

        public init(processes: Int, mercyNanoseconds: UInt64) {
            self.processes = processes
            self.mercyNanoseconds = mercyNanoseconds
            self.scoreboardSlots = processes * 3 + 8
        }
    }

    public enum Event: Equatable, Sendable {
        case started
        case forked(id: Int, pid: Int32)
        case forkFailed(id: Int, reason: String)
        /// The worker reported it is accepting.
        case workerReady(pid: Int32)
        case workerExited(pid: Int32, status: ProcessEnd)
        /// A worker ended with `ExitCode.appLoadFailed`: its app could not be loaded after fork.
        case appLoadFailed(pid: Int32, status: ProcessEnd)
        /// SIGTERM: serve what is queued, finish in-flight requests, exit 0.
        case gracefulStop
        /// A worker caught a SIGTERM that was not harakiri's: it is finishing what it holds and leaving.
        /// While the master stops on its own TERM this is a TERM to the whole process group.
        case workerGotTERM(pid: Int32)
        /// SIGINT / SIGQUIT: stop now.
        case immediateStop
        /// SIGHUP: replace every worker without refusing a request.
        case reloadWorkers
        /// A worker saw one of the app's source files change (`--py-autoreload`): a reload, unless that
        /// worker is already on its way out (every worker notices the same change).
        case sourceChanged(pid: Int32)
        /// uWSGI's chain reload (`--touch-chain-reload`): replace the workers one at a time, the next only
        /// once the previous one's replacement accepts, so all but one keep serving throughout.
        case chainReload
        case addWorker
        case removeWorker
        /// The worker must be recycled (request count, lifetime, memory...): replacement first.
        case recycle(pid: Int32, reason: RetireReason)
        /// A worker's request is past its harakiri deadline; `listenQueue` is the kernel's count
        /// (nil when unknown or not asked for).
        case harakiriExpired(pid: Int32, request: String, ageNanoseconds: UInt64, listenQueue: Int?)
        /// The master read a worker's resident set size (every `rssSampleNanoseconds` while evil RSS is on, and
        /// as the worker reports ready). `tookRequest`: its scoreboard row, read just before, showed a request
        /// started since its fork.
        case rssSampled(pid: Int32, bytes: Int, tookRequest: Bool)
        /// The master read a worker's address space (VmSize), sampled as `rssSampled` while evil AS is on.
        case addressSpaceSampled(pid: Int32, bytes: Int, tookRequest: Bool)
        /// The master read a worker's size as it reported ready (evil limits on): a worker over a limit then was
        /// over it before any request, however busy the listen queue keeps it afterwards. Kills nothing by itself
        /// (the periodic sample does), so readiness is announced as before.
        case freshSizeSampled(pid: Int32, rssBytes: Int?, addressSpaceBytes: Int?)
        /// The master measured the busyness of the active workers over the last cheaper cycle (percent of
        /// their time spent in requests), the listen queue and their total RSS: cheaper decides from these.
        case busySampled(busyPercent: Double, listenQueue: Int?, totalRSSBytes: Int)
        /// Cheaper wants this many more (positive) or fewer (negative) workers.
        case resize(by: Int, why: String)
        case deadlinePassed
    }

    public enum Action: Equatable, Sendable {
        case fork(id: Int)
        /// Worker protocol: SIGUSR1 = drain the listen queue then retire (shutdown);
        /// SIGHUP = stop accepting, finish, retire keep-alive connections, exit (retire);
        /// SIGINT = exit now. The master sends SIGTERM only as harakiri's graceful signal (see WorkerLifecycle).
        case signal(Int32, pid: Int32)
        case kill(pid: Int32)
        /// A lifecycle line (reloads, recycling, stops): always written.
        case log(String)
        /// A trouble line that can repeat for every worker (a fork failing 300 times): the master
        /// rate-limits it by its kind, not by its text.
        case report(Trouble, String)
        case notify(String)
        case statusChanged
        case exit(Int32)
        /// Read the worker's scoreboard again and answer with `.harakiriExpired` if still overdue.
        case checkHarakiri(pid: Int32)
        /// Count a harakiri against the worker's slot (stats) and mark its request as harakiri's on the
        /// scoreboard: comes before the graceful signal, so the worker's TERM handler can tell it from a stop.
        case recordHarakiri(pid: Int32)
    }

    /// The kinds of repeating trouble lines (`Action.report`).
    public enum Trouble: String, Sendable, CaseIterable {
        case forkFailed, notStarted, crashLooping, workerDied, scoreboardFull
    }

    /// The longest an immediate stop (SIGINT, SIGQUIT) waits for a worker before SIGKILL.
    public static let immediateStopNanoseconds: UInt64 = 3_000_000_000

    public static let sigHUP: Int32 = 1, sigINT: Int32 = 2, sigKILL: Int32 = 9, sigUSR1: Int32 = 10, sigTERM: Int32 = 15

    public var config: Config
    public private(set) var slots: [WorkerSlot] = []
    public private(set) var stopping = false
    public private(set) var announcedReady = false
    /// A worker has been ready once: from then on a worker that fails to start is not a boot failure.
    public private(set) var everReady = false
    /// Workers wanted now (between cheaper's minimum and --processes; TTIN/TTOU move it).
    public private(set) var target: Int
    private var respawnAt: [Int: Instant] = [:]
    private var backoff: [Int: Backoff] = [:]
    private var spawnsTotal = 0
    /// Scoreboard rows nobody holds, and the rows reserved for forks decided but not yet reported.
    private var freeScoreboardSlots: [Int]
    private var reservedScoreboardSlots: [Int: Int] = [:]
    /// Worker ids whose fork waits for a scoreboard row, oldest first.
    public private(set) var waitingForScoreboardSlot: [Int] = []
    /// Workers whose replacement waits for a scoreboard row; they keep serving meanwhile.
    private var deferredRetirements: [(pid: Int32, reason: RetireReason)] = []

    /// Cheaper's own state (quiet cycles), when cheaper is on.
    public private(set) var cheaperState: CheaperBusyness?

    public init(config: Config) {
        self.config = config
        cheaperState = config.cheaper.map(CheaperBusyness.init(config:))
        self.target = config.initialWorkers ?? config.processes
        freeScoreboardSlots = Array((0..<max(1, config.scoreboardSlots)).reversed())
    }

    /// Rows the master maps for the scoreboard (the pool hands out indices below this).
    public var scoreboardCapacity: Int { max(1, config.scoreboardSlots) }

    /// The scoreboard row reserved for the fork of worker `id` the pool just decided.
    public func scoreboardIndex(forFork id: Int) -> Int? { reservedScoreboardSlots[id] }

    public func slot(pid: Int32) -> WorkerSlot? { slots.first { $0.pid == pid } }

    /// Live workers not on their way out.
    /// Workers serving or starting, one per id (a worker waiting for its replacement and that replacement count once).
    public var activeCount: Int { slots.filter { $0.state != .retiring && $0.replacedOnReady == nil }.count }

    public var nextDeadline: Instant? {
        let retiring = slots.filter { $0.state != .retiring }.compactMap(\.recycleAt)
        return (slots.compactMap(\.killDeadline) + respawnAt.values + harakiriRecheckAt.values + retiring
                + termReplacementAt.values.map(\.at)).min()
    }

    private var harakiriRecheckAt: [Int32: Instant] = [:]
    /// The start of the request whose hold was last logged, per worker: one log line per held request.
    private var harakiriHeldLogged: [Int32: Instant] = [:]

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        switch event {
        case .started:
            return (1...target).flatMap { forkWorker(id: $0) }
        case .forked(let id, let pid):
            let previous = respawnCount(id)
            guard let row = reservedScoreboardSlots.removeValue(forKey: id) else {
                return [.log("worker \(id) (pid \(pid)) forked without a scoreboard row: stopping it"), .kill(pid: pid)]
            }
            let lifetime = config.maxLifetimeNanoseconds > 0
                ? now.saturatingAdd(config.maxLifetimeNanoseconds).saturatingAdd(UInt64(max(0, id)).saturatingMultiply(config.lifetimeDeltaNanoseconds)) : nil
            slots.append(WorkerSlot(id: id, pid: pid, state: .starting, startedAt: now, retireReason: nil,
                                    killDeadline: stopping ? now.saturatingAdd(config.mercyNanoseconds) : nil, respawns: previous,
                                    recycleAt: lifetime, scoreboardIndex: row))
            return stopping ? [.signal(Self.sigUSR1, pid: pid)] : [.statusChanged]
        case .forkFailed(let id, let reason):
            if let row = reservedScoreboardSlots.removeValue(forKey: id) { freeScoreboardSlots.append(row) }
            return [.report(.forkFailed, "cannot fork worker \(id): \(reason)")] + scheduleRespawn(id: id, now: now, why: "fork failed")
        case .workerReady(let pid):
            guard let i = slots.firstIndex(where: { $0.pid == pid }), slots[i].state == .starting else { return [] }
            slots[i].state = .accepting
            everReady = true
            var actions: [Action] = [.statusChanged]
            // The worker it replaces (same id, --lazy-apps) stops accepting now.
            let id = slots[i].id
            if !stopping, let old = slots.first(where: { $0.id == id && $0.pid != pid && $0.state == .accepting && $0.replacedOnReady != nil }),
               let reason = old.replacedOnReady {
                actions += retire(pid: old.pid, reason: reason, now: now, replace: false)
            }
            if !announcedReady && !stopping && slots.filter({ $0.state == .accepting }).count >= target {
                announcedReady = true
                actions.append(.notify("READY=1\nSTATUS=\(target) workers accepting"))
                actions.append(.log("\(target) workers accepting"))
            } else if announcedReady && reloading && !slots.contains(where: { $0.state == .starting }) {
                actions.append(.notify("READY=1\nSTATUS=workers reloaded"))
                reloading = false
            }
            if let c = chain, c.waitingFor == slots[i].id {
                chain = (c.pending, nil)
                actions += advanceChain(now: now)
            }
            return actions
        case .workerExited(let pid, let status):
            return workerExited(pid, status: status, now: now, loadFailed: false)
        case .appLoadFailed(let pid, let status):
            return workerExited(pid, status: status, now: now, loadFailed: true)
        case .gracefulStop:
            let termed = !termReplacementAt.isEmpty
            var actions = stop(signal: Self.sigUSR1, now: now, why: "graceful shutdown (SIGTERM to the master): serving queued connections and in-flight requests")
            // Before the exit, when every worker has already gone: the master stops at `.exit`.
            if termed {
                let at = actions.firstIndex { if case .exit = $0 { true } else { false } } ?? actions.endIndex
                actions.insert(contentsOf: noteGroupTERM(), at: at)
            }
            return actions
        case .workerGotTERM(let pid):
            if stopping { return noteGroupTERM() }
            // The worker is already leaving (it drains, finishes, exits). Whether it is replaced waits a moment:
            // a TERM to the whole group reaches the workers a little before or after the master, and a
            // replacement forked into a shutdown would only be stopped again.
            guard let i = slots.firstIndex(where: { $0.pid == pid }), slots[i].state != .retiring else { return [] }
            slots[i].retireReason = .term
            slots[i].killDeadline = now.saturatingAdd(config.mercyNanoseconds)
            slots[i].killDeadlineLimit = .mercy
            // One that was not ready yet, or had just started, is replaced after a back-off: an app that TERMs its
            // own worker as it starts would otherwise be forked a few times a second for ever.
            let young = slots[i].state == .starting || now - min(now, slots[i].startedAt) < config.crashWindowNanoseconds
            slots[i].state = .retiring
            // A worker waiting for its --lazy-apps replacement has one under way already.
            if slots[i].replacedOnReady != nil {
                slots[i].replacedOnReady = nil
                return [.statusChanged]
            }
            termReplacementAt[slots[i].id] = (pid, now.saturatingAdd(config.groupTERMWindowNanoseconds), young)
            return [.statusChanged]
        case .immediateStop:
            return stop(signal: Self.sigINT, now: now, why: "immediate shutdown")
        case .reloadWorkers:
            guard !stopping else { return [] }
            reloading = true
            chain = nil  // every worker is replaced now
            // (A worker already waiting for its replacement keeps waiting: the replacement started is the reload's.)
            let old = slots.filter { $0.state != .retiring && $0.replacedOnReady == nil }
            var actions: [Action] = [.notify("RELOADING=1"), .log("reloading \(old.count) workers: replacements first")]
            for w in old { actions += retire(pid: w.pid, reason: .reload, now: now, replace: true) }
            // A replacement that could not load the app, waiting out its back-off, is tried again now: the
            // operator who fixed the release and reloads must not wait up to 30 s.
            for w in slots where w.replacedOnReady != nil && respawnAt[w.id] != nil {
                backoff[w.id] = nil
                actions += forkWorker(id: w.id)
            }
            return actions
        case .chainReload:
            guard !stopping else { return [] }
            guard chain == nil else { return [.log("chain reload already running: this one is ignored (as uWSGI does)")] }
            let pending = slots.filter { $0.state != .retiring }.sorted { $0.id < $1.id }.map(\.pid)
            chain = (pending, nil)
            return [.notify("RELOADING=1"), .log("chain reload of \(pending.count) workers: one at a time")] + advanceChain(now: now)
        case .sourceChanged(let pid):
            // (A worker waiting for its replacement is on its way out too: every old worker sees the same change.)
            guard !stopping, let w = slot(pid: pid), w.state != .retiring, w.replacedOnReady == nil else { return [] }
            return handle(.reloadWorkers, now: now)
        case .addWorker:
            guard !stopping, target < config.processes else {
                return [.log("SIGTTIN: already at --processes \(config.processes)")]
            }
            target += 1
            return [.log("SIGTTIN: workers \(target - 1) -> \(target)")] + forkWorker(id: freeID())
        case .removeWorker:
            guard !stopping, target > 1 else { return [.log("SIGTTOU: keeping the last worker")] }
            target -= 1
            guard let victim = slots.filter({ $0.state != .retiring }).max(by: { $0.id < $1.id }) else { return [] }
            return [.log("SIGTTOU: workers \(target + 1) -> \(target)")] + retireID(victim.id, reason: .shrink, now: now)
        case .recycle(let pid, let reason):
            guard !stopping, let w = slot(pid: pid), w.state != .retiring, w.replacedOnReady == nil else { return [] }
            return retire(pid: pid, reason: reason, now: now, replace: true)
        case .harakiriExpired(let pid, let request, let age, let queue):
            return harakiri(pid: pid, request: request, age: age, queue: queue, now: now)
        case .rssSampled(let pid, let bytes, let took):
            return evilKill(pid: pid, bytes: bytes, tookRequest: took, limit: config.evilRSSLimitBytes, reason: .evilRSS, what: "RSS", now: now)
        case .addressSpaceSampled(let pid, let bytes, let took):
            return evilKill(pid: pid, bytes: bytes, tookRequest: took, limit: config.evilAddressSpaceLimitBytes, reason: .evilAddressSpace,
                            what: "address space", now: now)
        case .freshSizeSampled(let pid, let rss, let vsz):
            if let i = slots.firstIndex(where: { $0.pid == pid }) {
                slots[i].freshRSSBytes = rss
                slots[i].freshAddressSpaceBytes = vsz
            }
            return []
        case .busySampled(let percent, let queue, let rss):
            guard !stopping, var c = cheaperState else { return [] }
            let decision = c.cycle(busyPercent: percent, activeWorkers: activeCount, listenQueue: queue, totalRSSBytes: rss)
            cheaperState = c  // its count of quiet cycles moves on every sample
            guard let decision else { return [] }
            return resize(by: decision.delta, why: decision.why, now: now)
        case .resize(let delta, let why):
            return resize(by: delta, why: why, now: now)
        case .deadlinePassed:
            return deadlines(now: now)
        }
    }

    private var reloading = false
    /// A chain reload: the workers still to replace (pids, by id), and the id whose replacement it waits for.
    private var chain: (pending: [Int32], waitingFor: Int?)? = nil

    /// Retires the next worker of the chain still serving (its replacement forked first), or ends the chain.
    private mutating func advanceChain(now: Instant) -> [Action] {
        while var c = chain, !stopping {
            guard !c.pending.isEmpty else {
                chain = nil
                return [.log("chain reload complete"), .notify("READY=1\nSTATUS=workers reloaded")]
            }
            let pid = c.pending.removeFirst()
            chain = c
            guard let w = slot(pid: pid), w.state != .retiring, w.replacedOnReady == nil else { continue }
            chain = (c.pending, w.id)
            return [.log("chain reload: next is worker \(w.id) (pid \(pid))")]
                + retire(pid: pid, reason: .chainReload, now: now, replace: true)
        }
        return []
    }
    /// Workers that reported a TERM of their own while the master was not stopping: replaced when the
    /// window passes without a TERM to the master (by worker id: the pid that left, and when).
    private var termReplacementAt: [Int: (pid: Int32, at: Instant, young: Bool)] = [:]

    private mutating func noteGroupTERM() -> [Action] {
        termReplacementAt = [:]
        guard !groupTERMSeen, gracefulStopping else { return [] }
        groupTERMSeen = true
        return [.log("SIGTERM reached the workers too: a TERM to the whole process group (systemd KillMode=control-group, timeout(1), supervisord stopasgroup); each worker serves what is queued, finishes the requests it holds, then exits")]
    }
    /// The status the master exits with once every worker is gone (`ExitCode`).
    public private(set) var exitCode = ExitCode.success
    /// The stop is SIGTERM's (graceful), and a worker reported TERM too (a process-group TERM).
    private var gracefulStopping = false
    public private(set) var groupTERMSeen = false

    private func respawnCount(_ id: Int) -> Int { respawnTotals[id, default: 0] }
    private var respawnTotals: [Int: Int] = [:]

    /// Decides a fork, reserving its scoreboard row first; with every row held by a live (mostly
    /// retiring) worker, the fork waits for the next exit, and the log says so truthfully.
    private mutating func forkWorker(id: Int) -> [Action] {
        // A respawn waiting for its back-off is moot once a fork for the id is decided.
        respawnAt[id] = nil
        if reservedScoreboardSlots[id] == nil {
            guard let row = freeScoreboardSlots.popLast() else {
                guard !waitingForScoreboardSlot.contains(id) else { return [] }
                waitingForScoreboardSlot.append(id)
                let retiring = slots.filter { $0.state == .retiring }.count
                // One line when the table fills, not one per waiting fork.
                guard waitingForScoreboardSlot.count == 1 else { return [] }
                return [.report(.scoreboardFull, "all \(scoreboardCapacity) scoreboard slots are held (\(retiring) retiring workers still finishing requests): worker \(id) starts when one exits (by --worker-reload-mercy at the latest)")]
            }
            reservedScoreboardSlots[id] = row
        }
        spawnsTotal += 1
        return [.fork(id: id)]
    }

    /// The lowest id no live worker (nor a fork already decided in `extra`) uses, so ids stay 1...N.
    private func freeID(extra: [Action] = []) -> Int {
        var used = Set(slots.filter { $0.state != .retiring }.map(\.id))
        used.formUnion(respawnAt.keys)   // a crash-looping slot keeps its id while it waits
        used.formUnion(termReplacementAt.keys)
        used.formUnion(waitingForScoreboardSlot)
        for case .fork(let id) in extra { used.insert(id) }
        var id = 1
        while used.contains(id) { id += 1 }
        return id
    }

    /// Replacement first (when `replace`), then the old worker is told to retire. With no scoreboard row
    /// free for the replacement, the old worker keeps accepting and retires when a row frees: a storm of
    /// reloads during long requests never leaves the site without an accepting worker.
    private mutating func retire(pid: Int32, reason: RetireReason, now: Instant, replace: Bool) -> [Action] {
        guard let i = slots.firstIndex(where: { $0.pid == pid }) else { return [] }
        if replace && freeScoreboardSlots.isEmpty {
            guard !deferredRetirements.contains(where: { $0.pid == pid }) else { return [] }
            deferredRetirements.append((pid, reason))
            guard deferredRetirements.count == 1 else { return [] }
            let retiring = slots.filter { $0.state == .retiring }.count
            return [.report(.scoreboardFull, "all \(scoreboardCapacity) scoreboard slots are held (\(retiring) retiring workers still finishing requests): worker \(slots[i].id) (pid \(pid)) keeps serving and is replaced (\(reason.rawValue)) when one exits")]
        }
        deferredRetirements.removeAll { $0.pid == pid }
        // Its replacement is already on its way.
        if replace && slots[i].replacedOnReady != nil { return [] }
        if replace && config.workersLoadTheApp && reason.servesUntilReplaced && slots[i].state == .accepting {
            slots[i].replacedOnReady = reason
            respawnTotals[slots[i].id, default: 0] += 1
            return forkWorker(id: slots[i].id)
                + [.log("replacing worker \(slots[i].id) (pid \(pid)) (\(reason.rawValue)): it serves until its replacement is ready"),
                   .statusChanged]
        }
        slots[i].replacedOnReady = nil
        slots[i].state = .retiring
        slots[i].retireReason = reason
        slots[i].killDeadline = now.saturatingAdd(config.mercyNanoseconds)
        slots[i].killDeadlineLimit = .mercy
        let w = slots[i]
        var actions: [Action] = []
        if replace {
            respawnTotals[w.id, default: 0] += 1
            actions += forkWorker(id: w.id)
        }
        actions.append(.log("retiring worker \(w.id) (pid \(w.pid)): \(reason.rawValue)"))
        actions.append(.signal(Self.sigHUP, pid: w.pid))
        return actions + [.statusChanged]
    }

    private mutating func stop(signal: Int32, now: Instant, why: String) -> [Action] {
        let first = !stopping
        if first && signal == Self.sigUSR1 { gracefulStopping = true }
        if signal == Self.sigINT { gracefulStopping = false }
        stopping = true
        chain = nil
        respawnAt = [:]
        waitingForScoreboardSlot = []
        deferredRetirements = []
        var actions: [Action] = first ? [.notify("STOPPING=1"), .log(why)] : []
        for i in slots.indices {
            // Retiring workers already finish what they hold; an immediate stop overrides that.
            if slots[i].state != .retiring || signal == Self.sigINT {
                actions.append(.signal(signal, pid: slots[i].pid))
            }
            slots[i].state = .retiring
            slots[i].retireReason = slots[i].retireReason ?? .shutdown
            // An immediate stop (SIGINT, SIGQUIT) waits at most 3 s, whatever --worker-reload-mercy says.
            let limit: KillDeadline = signal == Self.sigINT && config.mercyNanoseconds > Self.immediateStopNanoseconds
                ? .immediateStop : .mercy
            let deadline = now.saturatingAdd(limit == .mercy ? config.mercyNanoseconds : Self.immediateStopNanoseconds)
            if slots[i].killDeadline.map({ deadline < $0 }) ?? true {
                slots[i].killDeadline = deadline
                slots[i].killDeadlineLimit = limit
            }
        }
        if slots.isEmpty { actions.append(.exit(exitCode)) }
        return actions
    }

    private mutating func workerExited(_ pid: Int32, status: ProcessEnd, now: Instant, loadFailed: Bool) -> [Action] {
        guard let i = slots.firstIndex(where: { $0.pid == pid }) else { return [] }
        let w = slots.remove(at: i)
        // The boot-failure policy (gunicorn halts on its worker boot error too): while no worker has ever been ready,
        // a worker that could not load the app, or ended in any way before it was ready (with --lazy-apps in its
        // import; without, in what runs after fork), stops swsgi with one line: it would only fail again, for ever.
        // Once workers have served, a replacement that fails (a release broken on disk, a database down at a
        // --lazy-apps import) is retried with a back-off while the others serve on: the site stays up.
        if !stopping, w.state == .starting, !everReady {
            freeScoreboardSlots.append(w.scoreboardIndex)
            exitCode = ExitCode.appLoadFailed
            let how = loadFailed ? "could not load the app (its error is above)"
                : config.workersLoadTheApp ? "ended (\(status)) while loading the app, before it was ready"
                : "ended (\(status)) before it was ready, and no worker ever was"
            return [.statusChanged, .log("worker \(w.id) (pid \(pid)) \(how): stopping with status \(ExitCode.appLoadFailed)")]
                + stop(signal: Self.sigINT, now: now, why: "immediate shutdown: the app cannot be loaded")
        }
        if !stopping, w.state == .starting, loadFailed || config.workersLoadTheApp {
            freeScoreboardSlots.append(w.scoreboardIndex)
            deferredRetirements.removeAll { $0.pid == pid }
            harakiriRecheckAt[pid] = nil
            harakiriHeldLogged[pid] = nil
            respawnTotals[w.id, default: 0] += 1
            let how = loadFailed ? "could not load the app (its error is above)" : "ended (\(status)) while loading the app"
            return [.statusChanged, .report(.workerDied, "worker \(w.id) (pid \(pid)) \(how); the other workers serve on")]
                + scheduleRespawn(id: w.id, now: now, why: "the app could not be loaded")
        }
        freeScoreboardSlots.append(w.scoreboardIndex)
        deferredRetirements.removeAll { $0.pid == pid }
        harakiriRecheckAt[pid] = nil
        harakiriHeldLogged[pid] = nil
        var actions: [Action] = [.statusChanged]
        if w.state == .retiring {
            if status != .exited(0) { actions.append(.log("worker \(w.id) (pid \(pid)) retired: \(status)")) }
        } else if w.replacedOnReady != nil, slots.contains(where: { $0.id == w.id && $0.state == .starting }) || respawnAt[w.id] != nil
                    || reservedScoreboardSlots[w.id] != nil || waitingForScoreboardSlot.contains(w.id) {
            // Its replacement is on its way: no second one.
            actions.append(.report(.workerDied, "worker \(w.id) (pid \(pid)) died (\(status)) while its replacement starts"))
        } else {
            actions.append(.report(.workerDied, "worker \(w.id) (pid \(pid)) died (\(status)); respawning"))
            respawnTotals[w.id, default: 0] += 1
            if now - w.startedAt < config.crashWindowNanoseconds {
                actions += scheduleRespawn(id: w.id, now: now, why: "crash-looping")
            } else {
                backoff[w.id] = nil
                actions += forkWorker(id: w.id)
            }
        }
        // A freed row goes to the oldest fork waiting for one, else to a deferred replacement.
        if !stopping, !waitingForScoreboardSlot.isEmpty {
            let id = waitingForScoreboardSlot.removeFirst()
            actions += forkWorker(id: id)
        } else if !stopping, let next = deferredRetirements.first {
            deferredRetirements.removeFirst()
            if let live = slots.first(where: { $0.pid == next.pid }), live.state != .retiring {
                actions += retire(pid: next.pid, reason: next.reason, now: now, replace: true)
            }
        }
        // A worker waiting for a replacement that no longer comes (the replacement was retired: fewer workers,
        // cheaper) serves on as that id's worker, and a later reload replaces it.
        if let old = slots.firstIndex(where: { $0.id == w.id && $0.replacedOnReady != nil }),
           !slots.contains(where: { $0.id == w.id && $0.state == .starting }), respawnAt[w.id] == nil,
           reservedScoreboardSlots[w.id] == nil, !waitingForScoreboardSlot.contains(w.id) {
            slots[old].replacedOnReady = nil
        }
        if stopping && slots.isEmpty { actions.append(.exit(exitCode)) }
        return actions
    }

    /// A worker that keeps dying young is respawned after a doubling pause, not in a tight loop.
    private mutating func scheduleRespawn(id: Int, now: Instant, why: String) -> [Action] {
        guard !stopping else { return [] }
        var b = backoff[id] ?? config.respawnBackoff
        let wait = b.next()
        backoff[id] = b
        respawnAt[id] = now.saturatingAdd(wait)
        if why == "crash-looping" { return [.report(.crashLooping, "worker \(id) is crash-looping: next respawn in \(wait / 1_000_000) ms")] }
        return [.report(.notStarted, "worker \(id) not started (\(why)): next try in \(wait / 1_000_000) ms")]
    }

    private mutating func deadlines(now: Instant) -> [Action] {
        var actions: [Action] = []
        for i in slots.indices {
            if let k = slots[i].killDeadline, k <= now {
                slots[i].killDeadline = nil
                actions.append(.log("worker \(slots[i].id) (pid \(slots[i].pid)) still running after \(slots[i].killDeadlineLimit.text): SIGKILL"))
                actions.append(.kill(pid: slots[i].pid))
            }
        }
        for (id, at) in respawnAt where at <= now {
            respawnAt[id] = nil
            actions += forkWorker(id: id)
        }
        for (id, term) in termReplacementAt where term.at <= now {
            termReplacementAt[id] = nil
            guard !stopping else { continue }
            respawnTotals[id, default: 0] += 1
            actions.append(.log("retiring worker \(id) (pid \(term.pid)): \(RetireReason.term.rawValue)"))
            if term.young {
                actions += scheduleRespawn(id: id, now: now, why: "SIGTERM to the worker as it started")
            } else {
                backoff[id] = nil
                actions += forkWorker(id: id)
            }
        }
        for (pid, at) in harakiriRecheckAt where at <= now {
            harakiriRecheckAt[pid] = nil
            actions.append(.checkHarakiri(pid: pid))
        }
        for w in slots where w.state != .retiring && !stopping {
            if let r = w.recycleAt, r <= now { actions += retire(pid: w.pid, reason: .lifetime, now: now, replace: true) }
        }
        return actions
    }

    /// A request ran past its deadline. With a queue threshold, it may run on while the listen queue
    /// is short; otherwise the graceful signal (or SIGKILL) goes out now and a replacement is forked.
    private mutating func harakiri(pid: Int32, request: String, age: UInt64, queue: Int?, now: Instant) -> [Action] {
        guard let i = slots.firstIndex(where: { $0.pid == pid }), !slots[i].harakiriFired else { return [] }
        let w = slots[i]
        if config.harakiriQueueThreshold > 0, let q = queue, q <= config.harakiriQueueThreshold {
            harakiriRecheckAt[pid] = now.saturatingAdd(config.harakiriRecheckNanoseconds)
            // The same request seen again starts within a few ms of the logged start (clock reads differ).
            let started = now - min(age, now)
            if harakiriHeldLogged[pid].map({ max($0, started) - min($0, started) > 5_000_000 }) ?? true {
                harakiriHeldLogged[pid] = started
                return [.log("harakiri held for worker \(w.id) (pid \(pid)): \(request) running \(age / 1_000_000) ms, listen queue \(q) <= threshold \(config.harakiriQueueThreshold)")]
            }
            return []
        }
        harakiriRecheckAt[pid] = nil
        slots[i].harakiriFired = true
        let queueText = queue.map { ", listen queue \($0)" } ?? ""
        var actions: [Action] = [.log("HARAKIRI worker \(w.id) (pid \(pid)): \(request) running \(age / 1_000_000) ms\(queueText)"),
                                 .recordHarakiri(pid: pid)]
        let wasRetiring = w.state == .retiring
        if !wasRetiring && !stopping {
            // The replacement accepts while the stuck worker is still being put down (unless one is already on its
            // way: --lazy-apps' replacements first).
            slots[i].state = .retiring
            slots[i].retireReason = .harakiri
            slots[i].replacedOnReady = nil
            if w.replacedOnReady == nil {
                respawnTotals[w.id, default: 0] += 1
                actions += forkWorker(id: w.id)
            }
        }
        if config.harakiriGracefulNanoseconds > 0 {
            let grace = now.saturatingAdd(config.harakiriGracefulNanoseconds)
            if slots[i].killDeadline.map({ grace < $0 }) ?? true {
                slots[i].killDeadline = grace
                slots[i].killDeadlineLimit = .harakiriGrace
            }
            // HUP waits in the worker's signalfd until the app returns: the worker then retires instead of
            // taking new work that SIGKILL would cut off when the grace runs out.
            if !wasRetiring { actions.append(.signal(Self.sigHUP, pid: pid)) }
            actions.append(.signal(config.harakiriGracefulSignal, pid: pid))
        } else {
            slots[i].killDeadline = nil
            actions.append(.kill(pid: pid))
        }
        return actions + [.statusChanged]
    }

    /// --evil-reload-on-rss: uWSGI's master SIGKILLs a worker whose sampled RSS reached the limit, whatever
    /// it is doing (core/master_checks.c); a graceful recycle would let a busy worker grow on until its
    /// request ends. The replacement is forked first, as for any recycle.
    /// --evil-reload-on-as is the same rule on the address space (uWSGI's vsz).
    private mutating func evilKill(pid: Int32, bytes: Int, tookRequest: Bool, limit: Int, reason: RetireReason, what: String, now: Instant) -> [Action] {
        guard let i = slots.firstIndex(where: { $0.pid == pid }) else { return [] }
        if tookRequest { slots[i].tookRequest = true }
        guard limit > 0, bytes >= limit, !slots[i].evilKilled else { return [] }
        slots[i].evilKilled = true
        slots[i].killDeadline = nil
        let w = slots[i]
        var actions: [Action] = [.log("worker \(w.id) (pid \(pid)) \(what) \(bytes >> 20) MiB >= --\(reason.rawValue) \(limit >> 20) MiB: SIGKILL")]
        if w.state != .retiring && !stopping && w.replacedOnReady != nil {
            // Its replacement (--lazy-apps' replacements first) is already on its way.
            slots[i].state = .retiring
            slots[i].retireReason = reason
            slots[i].replacedOnReady = nil
        } else if w.state != .retiring && !stopping {
            slots[i].state = .retiring
            slots[i].retireReason = reason
            respawnTotals[w.id, default: 0] += 1
            let fresh = reason == .evilRSS ? w.freshRSSBytes : w.freshAddressSpaceBytes
            let overBeforeAnyRequest = !w.tookRequest || fresh.map { $0 >= limit } == true
            if overBeforeAnyRequest && now - min(now, w.startedAt) < config.crashWindowNanoseconds {
                // Over the limit within its first second and before any request: the limit is below what a fresh
                // worker needs, and an immediate replacement would be killed too, four times a second for ever.
                // Back off. (One that took a request grew doing the app's work: replaced at once, as uWSGI does.)
                actions += scheduleRespawn(id: w.id, now: now, why: "over --\(reason.rawValue) within a second of its start, before any request: the limit is below a fresh worker's \(what)")
            } else {
                backoff[w.id] = nil
                actions += forkWorker(id: w.id)
            }
        }
        return actions + [.kill(pid: pid), .statusChanged]
    }

    /// Cheaper's decisions: more workers up to --processes, fewer down to --cheaper.
    private mutating func resize(by delta: Int, why: String, now: Instant) -> [Action] {
        guard !stopping, delta != 0 else { return [] }
        if delta > 0 {
            let add = min(delta, config.processes - target)
            guard add > 0 else { return [] }
            target += add
            var actions: [Action] = [.log("cheaper: \(target - add) -> \(target) workers (\(why))")]
            for _ in 0..<add { actions += forkWorker(id: freeID(extra: actions)) }
            return actions
        }
        let remove = min(-delta, target - max(1, config.minimumWorkers))
        guard remove > 0 else { return [] }
        target -= remove
        var actions: [Action] = [.log("cheaper: \(target + remove) -> \(target) workers (\(why))")]
        let victims = Set(slots.filter { $0.state != .retiring }.map(\.id)).sorted(by: >).prefix(remove)
        for id in victims { actions += retireID(id, reason: .cheaper, now: now) }
        return actions
    }

    /// Fewer workers: every live worker of `id` retires, a --lazy-apps worker waiting for its replacement and that
    /// replacement both (retiring only one would leave the id served), and a respawn due for it is dropped.
    private mutating func retireID(_ id: Int, reason: RetireReason, now: Instant) -> [Action] {
        respawnAt[id] = nil
        var actions: [Action] = []
        for w in slots where w.id == id && w.state != .retiring {
            actions += retire(pid: w.pid, reason: reason, now: now, replace: false)
        }
        return actions
    }
}
