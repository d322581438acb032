import Glibc
import Posix
import ServicesCore
import SWSGIConfig

/// Where a signal (a timer or cron job) runs, in uWSGI's terms.
public enum SignalTarget: Equatable, Sendable, CustomStringConvertible {
    /// The first worker free to take it (uWSGI's `worker`).
    case anyWorker
    /// Worker N, 1-based (`workerN`).
    case worker(Int)
    /// Every live worker (`workers`).
    case allWorkers
    /// The first mule free to take it (`mule`).
    case anyMule
    /// Mule N, 1-based (`muleN`).
    case mule(Int)
    /// Every mule (`mules`).
    case allMules

    /// uWSGI's spelling: `worker`, `worker2`, `workers`, `mule`, `mule1`, `mules`; nil if unknown.
    public init?(uwsgiName s: String) {
        switch s {
        case "worker", "worker0", "": self = .anyWorker
        case "workers", "active-workers": self = .allWorkers
        case "mule", "mule0": self = .anyMule
        case "mules": self = .allMules
        default:
            if s.hasPrefix("worker"), let n = Int(s.dropFirst(6)), n > 0 { self = .worker(n) }
            else if s.hasPrefix("mule"), let n = Int(s.dropFirst(4)), n > 0 { self = .mule(n) }
            else { return nil }
        }
    }

    public var description: String {
        switch self {
        case .anyWorker: "worker"
        case .worker(let n): "worker\(n)"
        case .allWorkers: "workers"
        case .anyMule: "mule"
        case .mule(let n): "mule\(n)"
        case .allMules: "mules"
        }
    }
}

/// What a signal handler is told when it runs.
public struct SignalFire: Sendable {
    /// The signal number, 0-255 (uWSGI's signal framework).
    public let signal: Int
    /// When the master meant it to run (CLOCK_MONOTONIC ns).
    public let scheduledAt: UInt64
}

/// Misuse of the services API or configuration: always a clear message.
public struct ServicesError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ d: String) { description = d }
}

/// The services' process-wide state: the shared mapping (caches, locks, unique-job flags), the record
/// channels to workers and mules, and what the app registered. Set up by the master before the first
/// fork, inherited by every worker and mule. Registration happens before `serve` (single-threaded),
/// which is why a class with plain vars is enough.
final class ServicesRuntime: @unchecked Sendable {
    static let shared = ServicesRuntime()

    enum Role: Equatable { case unconfigured, master, worker(Int), mule(Int) }
    var role = Role.unconfigured
    var options = ServerOptions(cores: 1)
    var masterPID: Int32 = 0

    // Shared memory.
    var caches: [String: SharedCache] = [:]
    var cacheNames: [String] = []
    var locks: [RobustMutex] = []
    /// 256 Int32 flags: 0 = idle, -1 = dispatched, else the pid running the unique signal.
    var running: UnsafeMutableRawPointer? = nil

    // Registered by the app (the same in every process: registration precedes the fork).
    struct Registration {
        let target: SignalTarget
        let unique: Bool
        let handler: (SignalFire) -> Void
    }
    var signals: [Int: Registration] = [:]
    /// The shared copy of registrations and timers (after set-up).
    var table: SharedSignalTable? = nil
    /// Workers and mules wake the master through it when they add a timer after the fork.
    var masterChannel: RecordChannel? = nil
    /// Timers of the shared table the master has scheduled.
    var knownTimers = 0
    var timers: [(signal: Int, kind: TimerScheduler.Kind)] = []
    var muleFunctions: [String: ([UInt8]) -> Void] = [:]
    var muleLoops: [String: () -> Void] = [:]
    var muleMessageHandler: (([UInt8]) -> Void)? = nil
    /// For a host that runs `--mule=FILE` itself (the Python binding): called in the mule when no Swift
    /// loop is registered for FILE.
    var muleFileRunner: ((String) -> Void)? = nil
    /// A host with process-wide state (Python) told about each mule fork, as the master tells it about workers'.
    var muleForkHooks: (prepare: () -> Void, parent: () -> Void, child: () -> Void)? = nil

    // Record channels (master keeps both ends: records for a dead process wait for its successor).
    var anyWorker: RecordChannel? = nil
    var workerChannels: [Int: RecordChannel] = [:]
    var anyMule: RecordChannel? = nil
    var muleChannels: [RecordChannel] = []

    // Master state.
    var scheduler = TimerScheduler()
    var mules = MuleSupervisor(count: 0)
    var receiveBuffer: [UInt8] = []
    var fullQueueSkips: [Int: Int] = [:]
    var fullQueueLoggedAt: [Int: UInt64] = [:]
    var closeMasterFDsInChild: () -> Void = {}
    var skippedUniqueRuns = 0
    /// Run in each worker and mule right after the fork (uwsgidecorators' `@postfork`).
    var postForkHooks: [() -> Void] = []
    /// Test hooks (see `CacheTestHooks`): 0 = off.
    var cacheStoresBeforeStall = 0
    var cacheStoresBeforeCrash = 0
    var cacheCrashed = false

    // MARK: registration

    /// Before the fork (the usual case) the registration is simply remembered; after it (`--lazy-apps`)
    /// it goes into the shared table, where the master finds it (see SharedSignalTable).
    func register(signal: Int, target: SignalTarget, unique: Bool, handler: @escaping (SignalFire) -> Void) throws {
        guard (0...255).contains(signal) else { throw ServicesError("signal \(signal): signals are 0...255") }
        if unique && (target == .allWorkers || target == .allMules) {
            throw ServicesError("signal \(signal): unique needs one target process at a time (not '\(target)')")
        }
        if let table {
            // Queues for one worker exist only for targets known before the fork.
            if role != .master { switch target {
            case .worker(let n) where workerChannels[n] == nil:
                throw ServicesError("signal \(signal): target worker\(n) must be registered before the fork; use 'worker'")
            case .allWorkers where workerChannels.isEmpty:
                throw ServicesError("signal \(signal): target 'workers' must be registered before the fork; use 'worker'")
            case .anyMule, .mule, .allMules where muleChannels.isEmpty:
                throw ServicesError("signal \(signal) targets a mule, but no --mule is given")
            case .mule(let n) where n > muleChannels.count:
                throw ServicesError("signal \(signal) targets mule \(n), but \(muleChannels.count) --mule given")
            default: break
            } }
            try table.setSignal(signal, target: target, unique: unique)
        }
        signals[signal] = Registration(target: target, unique: unique, handler: handler)
    }

    /// A free signal number for an anonymous timer, counting down from 255 like uwsgidecorators.
    func freeSignal() throws -> Int {
        for s in stride(from: 255, through: 0, by: -1) where signals[s] == nil { return s }
        throw ServicesError("all 256 signals are registered")
    }

    func addTimer(signal: Int, kind: TimerScheduler.Kind) throws {
        guard signals[signal] != nil else { throw ServicesError("signal \(signal) has no handler: register it first") }
        switch role {
        case .unconfigured:
            timers.append((signal, kind))
        case .master:
            if try table?.addTimer(signal: signal, kind: kind) != false { masterTimersChanged() }
        case .worker, .mule:
            // After the fork: into the shared table (once, however many lazy workers add it), then wake the master.
            if let table, try table.addTimer(signal: signal, kind: kind), let c = masterChannel {
                if try RecordChannel.send(c.writeEnd, [1], timeoutMilliseconds: 1000) == .full {
                    throw ServicesError("timer for signal \(signal): the master did not take the news for 1 s")
                }
            }
        }
    }

    /// The master's side of the shared timer table: schedules the timers it has not seen yet.
    func masterTimersChanged() {
        guard let table else { return }
        let clock = Self.clock()
        while knownTimers < table.timerCount {
            if let t = table.timer(knownTimers) { scheduler.add(.init(id: t.signal, kind: t.kind), clock: clock) }
            knownTimers += 1
        }
    }

    /// Readable in the master: a worker or mule added a timer after the fork.
    var masterNotifyFD: Int32? { masterChannel?.readEnd }

    func masterNotified() {
        guard let c = masterChannel else { return }
        while (try? RecordChannel.receive(c.readEnd, buffer: &receiveBuffer)) != nil {}
        masterTimersChanged()
    }

    // MARK: set-up (master, before any fork)

    func setUp(_ options: ServerOptions) throws {
        self.options = options
        masterPID = getpid()
        var size = 64 + 256 * 4
        let tableBase = size
        size += SharedSignalTable.bytes
        let lockBase = size
        size += (options.locks + 1) * 64
        var cacheBases: [Int] = []
        for c in options.caches {
            cacheBases.append(size)
            size += CacheLayout(items: c.items, blockSize: c.blockSizeBytes, keySize: c.keySizeBytes).totalBytes
        }
        precondition(RobustMutex.byteCount <= 64)
        let ram = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        if ram > 0, size > ram {
            throw ServicesError("--cache2: the caches need \(size >> 20) MiB of shared memory, more than this machine's \(ram >> 20) MiB of RAM")
        }
        let region = try SharedMapping(byteCount: size)
        running = region.base + 64
        let table = SharedSignalTable(base: region.base + tableBase)
        try table.initialize()
        for (s, r) in signals { try table.setSignal(s, target: r.target, unique: r.unique) }
        self.table = table
        masterChannel = try RecordChannel()
        locks = try (0...options.locks).map { i in
            let m = RobustMutex(at: region.base + lockBase + i * 64)
            try m.initialize()
            return m
        }
        for (c, off) in zip(options.caches, cacheBases) {
            let cache = SharedCache(name: c.name, base: region.base + off, items: c.items, blockSize: c.blockSizeBytes, keySize: c.keySizeBytes)
            try cache.initialize()
            caches[c.name] = cache
            cacheNames.append(c.name)
        }
        // Targets and mule files must name something that exists: refused now, not at the first firing.
        for (s, r) in signals.sorted(by: { $0.key < $1.key }) {
            switch r.target {
            case .worker(let n) where n > options.processes:
                throw ServicesError("signal \(s) targets worker \(n), but --processes is \(options.processes)")
            case .mule(let n) where n > options.mules.count:
                throw ServicesError("signal \(s) targets mule \(n), but \(options.mules.count) --mule given")
            case .anyMule, .allMules where options.mules.isEmpty:
                throw ServicesError("signal \(s) targets a mule, but no --mule is given")
            default: break
            }
        }
        for case .file(let f) in options.mules where muleLoops[f] == nil && muleFileRunner == nil {
            throw ServicesError("--mule=\(f): no mule loop is registered for '\(f)' (Mules.registerLoop(\"\(f)\") { ... })")
        }
        anyWorker = try RecordChannel()
        let targets = signals.values.map(\.target)
        let wantsEach = targets.contains(.allWorkers)
        for id in 1...options.processes where wantsEach || targets.contains(.worker(id)) {
            workerChannels[id] = try RecordChannel()
        }
        if !options.mules.isEmpty {
            anyMule = try RecordChannel()
            muleChannels = try options.mules.map { _ in try RecordChannel() }
        }
        role = .master
        for t in timers { _ = try table.addTimer(signal: t.signal, kind: t.kind) }
        masterTimersChanged()
    }

    static func clock() -> TimerScheduler.Clock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var local = tm()
        localtime_r(&t, &local)
        return .init(monotonic: monotonicNanoseconds(), unixNanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec),
                     utcOffsetSeconds: Int64(local.tm_gmtoff))
    }

    // MARK: records

    enum RecordKind: UInt8 { case signal = 1, message = 2, function = 3 }

    static func signalRecord(_ signal: Int, scheduledAt: UInt64) -> [UInt8] {
        var r: [UInt8] = [RecordKind.signal.rawValue, UInt8(signal)]
        withUnsafeBytes(of: scheduledAt.littleEndian) { r += $0 }
        return r
    }

    /// Runs a signal or function record here; returns a message record's payload.
    func run(record r: [UInt8]) -> [UInt8]? {
        guard let kind = r.first.flatMap(RecordKind.init(rawValue:)) else { return nil }
        switch kind {
        case .signal:
            guard r.count == 10 else { return nil }
            let signal = Int(r[1])
            var at: UInt64 = 0
            for i in 0..<8 { at |= UInt64(r[2 + i]) << (8 * i) }
            guard let reg = signals[signal] else {
                ServerLog.line("signal \(signal) arrived but has no handler in this process")
                return nil
            }
            let flag = running.map { $0 + signal * 4 }
            if reg.unique, let flag { SharedWord.store32(flag, getpid()) }
            reg.handler(SignalFire(signal: signal, scheduledAt: at))
            if reg.unique, let flag { SharedWord.store32(flag, 0) }
            return nil
        case .message:
            return Array(r.dropFirst())
        case .function:
            guard r.count >= 2, r.count >= 2 + Int(r[1]) else { return nil }
            let name = String(decoding: r[2..<(2 + Int(r[1]))], as: UTF8.self)
            guard let f = muleFunctions[name] else {
                ServerLog.line("mule function '\(name)' is not registered in this process")
                return nil
            }
            f(Array(r[(2 + Int(r[1]))...]))
            return nil
        }
    }

    // MARK: master

    /// The next moment the master must act for the services (a timer, a delayed mule respawn).
    var nextDeadline: UInt64? {
        [scheduler.nextDeadline, mules.nextDeadline].compactMap { $0 }.min()
    }

    /// Fires due timers and respawns due mules. Called by the master's loop after every wake.
    func masterTick() {
        guard role == .master, let due = nextDeadline, due <= monotonicNanoseconds() else { return }
        let clock = Self.clock()
        if let d = scheduler.nextDeadline, d <= clock.monotonic {
            for f in scheduler.fire(clock: clock) { dispatch(signal: f.id, scheduledAt: f.scheduledAt) }
        }
        carryOut(mules.deadlinePassed(now: clock.monotonic))
    }

    /// Sends a signal to its target's queue. A unique signal whose last run has not finished is skipped.
    func dispatch(signal: Int, scheduledAt: UInt64) {
        // The shared table knows registrations made after the fork too.
        guard let reg = table?.signal(signal) ?? signals[signal].map({ ($0.target, $0.unique) }) else { return }
        let flag = running.map { $0 + signal * 4 }
        if reg.unique, let flag, !SharedWord.compareExchange32(flag, 0, -1) {
            skippedUniqueRuns += 1
            return
        }
        let record = Self.signalRecord(signal, scheduledAt: scheduledAt)
        var fds: [Int32] = []
        switch reg.target {
        case .anyWorker: fds = anyWorker.map { [$0.writeEnd] } ?? []
        case .worker(let n): fds = workerChannels[n].map { [$0.writeEnd] } ?? []
        case .allWorkers: fds = workerChannels.keys.sorted().compactMap { workerChannels[$0]?.writeEnd }
        case .anyMule: fds = anyMule.map { [$0.writeEnd] } ?? []
        case .mule(let n): fds = n <= muleChannels.count ? [muleChannels[n - 1].writeEnd] : []
        case .allMules: fds = muleChannels.map(\.writeEnd)
        }
        var sent = false
        for fd in fds {
            switch (try? RecordChannel.send(fd, record)) ?? .full {
            case .sent: sent = true
            case .full:
                // Every target busy for long: say so once every 10 s, not at the timer's rate.
                fullQueueSkips[signal, default: 0] += 1
                let now = monotonicNanoseconds()
                if now >= fullQueueLoggedAt[signal, default: 0] {
                    fullQueueLoggedAt[signal] = now + 10_000_000_000
                    ServerLog.line("signal \(signal) for \(reg.target): its queue is full (nothing took a run); \(fullQueueSkips[signal]!) runs skipped so far")
                }
            }
        }
        if reg.unique, !sent, let flag { SharedWord.store32(flag, 0) }
    }

    /// A child was reaped: frees the unique flags it held; a mule is respawned (see MuleSupervisor).
    /// True when it was a mule.
    func childExited(pid: Int32, status: String) -> Bool {
        if let running {
            for s in 0..<256 where SharedWord.load32(running + s * 4) == pid { SharedWord.store32(running + s * 4, 0) }
        }
        guard let actions = mules.exited(pid: pid, status: status, now: monotonicNanoseconds()) else { return false }
        carryOut(actions)
        return true
    }

    func startMules(closeMasterFDs: @escaping () -> Void) {
        closeMasterFDsInChild = closeMasterFDs
        mules = MuleSupervisor(count: options.mules.count)
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
                muleForkHooks?.prepare()
                let pid = fork()
                let e = errno
                if pid == 0 { becomeMule(id) }
                muleForkHooks?.parent()
                let now = monotonicNanoseconds()
                carryOut(pid < 0 ? mules.forkFailed(id: id, reason: errnoText(e), now: now) : mules.forked(id: id, pid: pid, now: now))
            }
        }
    }

    // MARK: children

    /// In a freshly forked worker.
    func enterWorker(id: Int) {
        role = .worker(id)
        // Only the master fires timers.
        scheduler = TimerScheduler()
        for hook in postForkHooks { hook() }
    }

    /// The worker's signal queues: the shared one (EPOLLEXCLUSIVE: one worker wakes) and its own.
    var workerQueues: [(fd: Int32, exclusive: Bool)] {
        guard case .worker(let id) = role else { return [] }
        var out: [(Int32, Bool)] = []
        if let a = anyWorker { out.append((a.readEnd, true)) }
        if let own = workerChannels[id] { out.append((own.readEnd, false)) }
        return out
    }

    /// The worker's queues are readable: run one record from each (between requests). One, not all:
    /// epoll is level-triggered, so a backlog comes back next round, after requests and master signals.
    func workerQueuesReadable() {
        for (fd, _) in workerQueues {
            if let r = try? RecordChannel.receive(fd, buffer: &receiveBuffer) { _ = run(record: r) }
        }
    }

    private func becomeMule(_ id: Int) -> Never {
        muleForkHooks?.child()
        closeMasterFDsInChild()
        role = .mule(id)
        scheduler = TimerScheduler()
        // A mule is an ordinary process: default signal dispositions, nothing blocked.
        var all = sigset_t()
        sigfillset(&all)
        sigprocmask(SIG_UNBLOCK, &all, nil)
        _ = setParentDeathSignal(SIGKILL)
        if getppid() != masterPID { _exit(0) }
        setProcessTitle(options.processTitle("swsgi mule \(id)"))
        for hook in postForkHooks { hook() }
        switch options.mules[id - 1] {
        case .file(let f):
            if let loop = muleLoops[f] { loop() }
            else if let runner = muleFileRunner { runner(f) }
            _exit(0)
        case .dispatcher:
            while true {
                guard let message = Mules.receiveMessage() else { continue }
                if let h = muleMessageHandler { h(message) }
                else { ServerLog.line("mule \(id): a message of \(message.count) bytes and no Mules.onMessage handler") }
            }
        }
    }

    /// The mule's queues, its own first (messages for it by id), then the shared one.
    var muleQueues: [Int32] {
        guard case .mule(let id) = role else { return [] }
        return [muleChannels[id - 1].readEnd] + (anyMule.map { [$0.readEnd] } ?? [])
    }

    // MARK: stats

    var cacheStatsJSON: String {
        cacheNames.compactMap { caches[$0]?.figures }.map { f in
            "{\"name\":\(jsonString(f.name)),\"capacity\":\(f.capacity),\"items\":\(f.items),\"hits\":\(f.hits),\"misses\":\(f.misses),"
                + "\"refusals\":\(f.refusedKey + f.refusedValue + f.refusedFull),\"refused_key_too_large\":\(f.refusedKey),"
                + "\"refused_value_too_large\":\(f.refusedValue),\"refused_full\":\(f.refusedFull),\"recoveries\":\(f.recoveries)}"
        }.joined(separator: ",")
    }

    var muleStatsJSON: String {
        options.mules.indices.map { i in
            "{\"id\":\(i + 1),\"pid\":\(mules.mules.first { $0.id == i + 1 }?.pid ?? 0),"
                + "\"respawn_count\":\(mules.mules.first { $0.id == i + 1 }?.respawns ?? 0)}"
        }.joined(separator: ",")
    }
}
