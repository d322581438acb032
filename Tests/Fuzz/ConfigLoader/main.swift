// libFuzzer target for swsgi's option loading (compiled with Sources/Common, Sources/SWSGIConfig and
// Sources/WorkerCore by Tests/Fuzz/run). Each input is split at 0xFF bytes into: command-line arguments
// (NUL-separated), SWSGI_* environment entries (NUL-separated), and the text of the ini file.
// Checked besides "no crash, hang or sanitizer report": a configuration that loads validates again, and
// the worker pool built from it survives start-up, reloads, deadlines and stop at extreme clock values
// (every value validation lets through is safe to compute with).

func fields(_ bytes: ArraySlice<UInt8>) -> [String] {
    bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = bytes.split(separator: 0xFF, maxSplits: 2, omittingEmptySubsequences: false)
    let args = parts.count > 0 && !parts[0].isEmpty ? fields(parts[0]) : []
    let env = parts.count > 1 && !parts[1].isEmpty ? fields(parts[1]).map { $0.hasPrefix("SWSGI_") ? $0 : "SWSGI_" + $0 } : []
    let ini = parts.count > 2 ? String(decoding: parts[2], as: UTF8.self) : ""
    let result: LoadResult
    do {
        result = try ServerOptions.load(arguments: args + (ini.isEmpty ? [] : ["--ini", "fuzz.ini"]), environment: env, cores: 2,
                                        readFile: { _ in ini })
    } catch {
        precondition(!error.message.isEmpty)
        return 0
    }
    guard case .run(let o) = result else { return 0 }
    do { try o.validate() } catch { preconditionFailure("loaded options fail validation: \(error)") }
    var config = WorkerPool.Config(processes: o.processes, mercyNanoseconds: o.workerReloadMercyNanoseconds)
    config.harakiriGracefulNanoseconds = o.harakiriGracefulTimeoutNanoseconds
    config.harakiriQueueThreshold = o.harakiriGracefulQueueThreshold
    config.maxLifetimeNanoseconds = o.maxWorkerLifetimeNanoseconds
    config.lifetimeDeltaNanoseconds = o.maxWorkerLifetimeDeltaNanoseconds
    if o.cheaper > 0 {
        config.minimumWorkers = o.cheaper
        config.initialWorkers = max(o.effectiveCheaperInitial, o.cheaper)
    }
    // The pool's bookkeeping is linear per event, so a 4096-worker start costs ~10^7 steps: at most 64
    // workers are started (the arithmetic with ids, lifetimes and deltas is the same).
    config.initialWorkers = min(config.initialWorkers ?? o.processes, 64)
    _ = maxRequests(base: o.maxRequests, delta: o.maxRequestsDelta, workerID: o.processes)
    // One clock reading per input (picked by its size), so each execution stays cheap.
    for now in [[UInt64(1), UInt64.max / 2, UInt64.max - 1][size % 3]] {
        var pool = WorkerPool(config: config)
        var pid: Int32 = 100
        for case .fork(let id) in pool.handle(.started, now: now) {
            pid += 1
            _ = pool.handle(.forked(id: id, pid: pid), now: now)
            _ = pool.handle(.workerReady(pid: pid), now: now)
        }
        _ = pool.handle(.reloadWorkers, now: now)
        _ = pool.handle(.harakiriExpired(pid: 101, request: "GET /", ageNanoseconds: .max, listenQueue: 5), now: now)
        _ = pool.handle(.deadlinePassed, now: pool.nextDeadline ?? now)
        _ = pool.handle(.resize(by: 3, why: "fuzz"), now: now)
        _ = pool.handle(.gracefulStop, now: now)
    }
    return 0
}
