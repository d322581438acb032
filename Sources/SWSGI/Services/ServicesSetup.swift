import Glibc
import Posix
import ServicesCore
import SWSGIConfig

/// What the services share between processes, made once by the master before the first fork and never
/// changed after: the shared mapping (caches, locks, unique-run flags, the signal table) and the record
/// channels to workers and mules (the master keeps both ends, so records for a dead process wait for its
/// successor). Every worker and mule inherits it with the fork.
struct ServicesSetup: Sendable {
    let options: ServerOptions
    let masterPID: Int32
    /// `--cache2` caches by name, and their names in command-line order.
    let caches: [String: SharedCache]
    let cacheNames: [String]
    /// Lock 0, then `--locks` more.
    let locks: [RobustMutex]
    let uniqueRuns: UniqueRunFlags
    /// Registrations and timers as every process sees them (ones made after the fork included).
    let table: SharedSignalTable
    /// Workers and mules wake the master through it when they add a timer after the fork.
    let masterChannel: RecordChannel
    /// The queue the first free worker takes from, and each worker's own (only for targets that need one).
    let anyWorker: RecordChannel
    let workerChannels: [Int: RecordChannel]
    /// The same for mules (none without `--mule`).
    let anyMule: RecordChannel?
    let muleChannels: [RecordChannel]

    /// Maps the shared memory and opens the channels for `options` and what the app registered so far.
    /// Targets and mule files must name something that exists: refused now, not at the first firing.
    static func make(_ options: ServerOptions, registrations r: ServiceRegistrations) throws -> ServicesSetup {
        for (s, reg) in r.signals.sorted(by: { $0.key < $1.key }) {
            switch reg.target {
            case .worker(let n) where n > options.processes:
                throw ServicesError("signal \(s) targets worker \(n), but --processes is \(options.processes)")
            case .mule(let n) where n > options.mules.count:
                throw ServicesError("signal \(s) targets mule \(n), but \(options.mules.count) --mule given")
            case .anyMule, .allMules where options.mules.isEmpty:
                throw ServicesError("signal \(s) targets a mule, but no --mule is given")
            default: break
            }
        }
        for case .file(let f) in options.mules where r.muleLoops[f] == nil && r.muleFileRunner == nil {
            throw ServicesError("--mule=\(f): no mule loop is registered for '\(f)' (Mules.registerLoop(\"\(f)\") { ... })")
        }
        // Layout: 64 spare bytes, the unique-run flags, the signal table, the locks, the caches.
        var size = 64 + UniqueRunFlags.bytes
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
        let table = SharedSignalTable(base: region.base + tableBase)
        try table.initialize()
        for (s, reg) in r.signals { try table.setSignal(s, target: reg.target, unique: reg.unique) }
        for t in r.timers { _ = try table.addTimer(signal: t.signal, kind: t.kind) }
        let locks = try (0...options.locks).map { i in
            let m = RobustMutex(at: region.base + lockBase + i * 64)
            try m.initialize()
            return m
        }
        var caches: [String: SharedCache] = [:]
        for (c, off) in zip(options.caches, cacheBases) {
            let cache = SharedCache(name: c.name, base: region.base + off, items: c.items, blockSize: c.blockSizeBytes, keySize: c.keySizeBytes)
            try cache.initialize()
            caches[c.name] = cache
        }
        let targets = r.signals.values.map(\.target)
        let wantsEach = targets.contains(.allWorkers)
        var workerChannels: [Int: RecordChannel] = [:]
        for id in 1...options.processes where wantsEach || targets.contains(.worker(id)) {
            workerChannels[id] = try RecordChannel()
        }
        return ServicesSetup(
            options: options, masterPID: getpid(), caches: caches, cacheNames: options.caches.map(\.name), locks: locks,
            uniqueRuns: UniqueRunFlags(base: region.base + 64), table: table, masterChannel: try RecordChannel(),
            anyWorker: try RecordChannel(), workerChannels: workerChannels,
            anyMule: options.mules.isEmpty ? nil : try RecordChannel(),
            muleChannels: try options.mules.map { _ in try RecordChannel() })
    }

    // MARK: registrations made after the set-up

    /// A registration made once the table exists (a `--lazy-apps` worker's import, a thread of the master's
    /// app) goes into the table, where the master finds it. A child can only target queues made before the fork.
    func publish(signal: Int, target: SignalTarget, unique: Bool, inChild: Bool) throws {
        if inChild { switch target {
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

    /// Into the shared table (once, however many lazy workers add it), then the master is woken to schedule it.
    func publishTimer(signal: Int, kind: TimerScheduler.Kind) throws {
        guard try table.addTimer(signal: signal, kind: kind) else { return }
        if try RecordChannel.send(masterChannel.writeEnd, [1], timeoutMilliseconds: 1000) == .full {
            throw ServicesError("timer for signal \(signal): the master did not take the news for 1 s")
        }
    }

    // MARK: queues

    /// A worker's signal queues: the shared one (EPOLLEXCLUSIVE: one worker wakes) and its own.
    func workerQueues(_ id: Int) -> [(fd: Int32, exclusive: Bool)] {
        [(anyWorker.readEnd, true)] + (workerChannels[id].map { [($0.readEnd, false)] } ?? [])
    }

    /// A mule's queues, its own first (messages for it by id), then the shared one.
    func muleQueues(_ id: Int) -> [Int32] {
        guard id >= 1, id <= muleChannels.count else { return [] }
        return [muleChannels[id - 1].readEnd] + (anyMule.map { [$0.readEnd] } ?? [])
    }

    /// The write ends a signal for `target` goes to.
    func writeEnds(for target: SignalTarget) -> [Int32] {
        switch target {
        case .anyWorker: [anyWorker.writeEnd]
        case .worker(let n): workerChannels[n].map { [$0.writeEnd] } ?? []
        case .allWorkers: workerChannels.keys.sorted().compactMap { workerChannels[$0]?.writeEnd }
        case .anyMule: anyMule.map { [$0.writeEnd] } ?? []
        case .mule(let n): n >= 1 && n <= muleChannels.count ? [muleChannels[n - 1].writeEnd] : []
        case .allMules: muleChannels.map(\.writeEnd)
        }
    }
}
