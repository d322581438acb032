import Glibc
import Posix

/// Plain functions over the services, one per function of uWSGI's Python `uwsgi` module, for a
/// binding in this package (the Python host of issue 11) to call from its C-API shims. Bytes in,
/// bytes out; `cache: nil` means the first `--cache2` (uWSGI's default cache). Errors are thrown
/// with a message meant for the Python exception.
package enum UWSGIBinding {
    static func cache(_ name: String?) throws -> SharedCache {
        let setup = currentServices.setup
        guard let n = name ?? setup?.cacheNames.first else { throw ServicesError("no cache configured: add --cache2 name=NAME,items=N") }
        guard let c = setup?.caches[n] else { throw CacheError.noSuchCache(n) }
        return c
    }

    // cache_get, cache_set, cache_update, cache_del, cache_exists, cache_clear, cache_inc, cache_dec, cache_keys
    package static func cacheGet(_ key: [UInt8], cache: String? = nil) throws -> [UInt8]? { try Self.cache(cache).get(key) }
    /// False when a live entry exists (uWSGI returns None then).
    package static func cacheSet(_ key: [UInt8], _ value: [UInt8], expires: Int = 0, cache: String? = nil) throws -> Bool {
        try Self.cache(cache).set(key, value, expiresInSeconds: expires, replace: false)
    }
    package static func cacheUpdate(_ key: [UInt8], _ value: [UInt8], expires: Int = 0, cache: String? = nil) throws {
        try Self.cache(cache).set(key, value, expiresInSeconds: expires, replace: true)
    }
    package static func cacheDel(_ key: [UInt8], cache: String? = nil) throws -> Bool { try Self.cache(cache).delete(key) }
    package static func cacheExists(_ key: [UInt8], cache: String? = nil) throws -> Bool { try Self.cache(cache).exists(key) }
    package static func cacheClear(cache: String? = nil) throws { try Self.cache(cache).clear() }
    package static func cacheInc(_ key: [UInt8], by delta: Int64 = 1, cache: String? = nil) throws -> Int64 {
        try Self.cache(cache).increment(key, by: delta)
    }
    package static func cacheDec(_ key: [UInt8], by delta: Int64 = 1, cache: String? = nil) throws -> Int64 {
        try Self.cache(cache).increment(key, by: -delta)
    }
    package static func cacheKeys(cache: String? = nil) throws -> [[UInt8]] { try Self.cache(cache).keys() }
    /// One cache for a binding's hot path: raw buffers in, the value handed out in place (no arrays).
    package static func cacheHandle(_ name: String?) throws -> UWSGICacheHandle { UWSGICacheHandle(cache: try cache(name)) }

    // register_signal, add_timer, add_ms_timer, add_cron: at import time in the master (before the fork),
    // or in each worker with --lazy-apps (after it: the same timer added by every worker runs once;
    // targets workerN / workers must then have been registered before the fork)
    /// `target`: uWSGI's spelling (`worker`, `workerN`, `workers`, `mule`, `muleN`, `mules`).
    package static func registerSignal(_ signal: Int, target: String, unique: Bool = false, _ handler: @escaping (Int) -> Void) throws {
        guard let t = SignalTarget(uwsgiName: target) else { throw ServicesError("unknown signal target '\(target)'") }
        try Timers.registerSignal(signal, target: t, unique: unique) { handler($0.signal) }
    }
    /// `uwsgi.signal_registered(num)`: uwsgidecorators looks for a free signal with it.
    package static func signalRegistered(_ signal: Int) -> Bool { currentServices.registrations.read { $0.signals[signal] != nil } }
    package static func addTimer(_ signal: Int, seconds: Int) throws {
        try Timers.addTimer(signal: signal, seconds: seconds)
    }
    package static func addMsTimer(_ signal: Int, milliseconds: Int) throws {
        try Timers.addTimer(signal: signal, milliseconds: milliseconds)
    }
    package static func addCron(_ signal: Int, _ minute: Int, _ hour: Int, _ day: Int, _ month: Int, _ weekday: Int) throws {
        try Timers.addCron(signal: signal, minute: minute, hour: hour, day: day, month: month, weekday: weekday)
    }

    // lock, unlock (lock_ctx is lock + unlock around the block)
    package static func lock(_ n: Int = 0) throws { try Locks.lock(n) }
    package static func unlock(_ n: Int = 0) throws { try Locks.unlock(n) }

    // mule_msg, mule_get_msg; @mulefunc = registerMuleFunction + callMuleFunction
    package static func muleMsg(_ message: [UInt8], mule: Int = 0) throws { try Mules.send(message, to: mule) }
    /// nil on timeout (-1 = wait forever) or outside a mule.
    package static func muleGetMsg(timeoutMilliseconds: Int32 = -1) -> [UInt8]? { Mules.receiveMessage(timeoutMilliseconds: timeoutMilliseconds) }
    package static func registerMuleFunction(_ name: String, _ body: @escaping ([UInt8]) -> Void) { Mules.registerFunction(name, body) }
    package static func callMuleFunction(_ name: String, _ payload: [UInt8], mule: Int = 0) throws { try Mules.call(name, payload, mule: mule) }
    /// What a mule runs for `--mule=FILE` when no Swift loop is registered for FILE (the Python script).
    package static func setMuleFileRunner(_ runner: @escaping (String) -> Void) { currentServices.registrations.change { $0.muleFileRunner = runner } }
    /// Told about each mule fork (the Python host: fork locks and GIL, as around a worker's fork).
    package static func setMuleForkHooks(prepare: @escaping () -> Void, parent: @escaping () -> Void, child: @escaping () -> Void) {
        currentServices.registrations.change { $0.muleForkHooks = (prepare, parent, child) }
    }
    /// What the default `--mule` does with a plain message.
    package static func setMuleMessageHandler(_ handler: @escaping ([UInt8]) -> Void) { Mules.onMessage(handler) }

    // @postfork: runs in every worker and mule right after the fork
    package static func addPostFork(_ body: @escaping () -> Void) { ServerProcess.afterFork(body) }

    // setprocname, worker_id, mule_id, numproc, masterpid, opt, reload
    package static func setProcName(_ title: String) { ProcessTitle.set(title) }
    package static var workerID: Int { ServerProcess.workerID }
    package static var muleID: Int { ServerProcess.muleID }
    package static var numproc: Int { ServerProcess.processes }
    package static var masterPID: Int32 { ServerProcess.masterPID }
    /// The options as given on the command line (`uwsgi.opt`): name -> values in order.
    package static var opt: [(name: String, value: String)] {
        var out: [(String, String)] = []
        var args = CommandLine.arguments.dropFirst()[...]
        while let a = args.popFirst() {
            guard a.hasPrefix("--") else { continue }
            let body = a.dropFirst(2)
            if let eq = body.firstIndex(of: "=") { out.append((String(body[..<eq]), String(body[body.index(after: eq)...]))); continue }
            if let next = args.first, !next.hasPrefix("--") { out.append((String(body), next)); args = args.dropFirst() }
            else { out.append((String(body), "true")) }
        }
        return out
    }
    /// `uwsgi.reload()`: a graceful reload of the workers (SIGHUP to the master).
    package static func reload() throws {
        let master = ServerProcess.masterPID
        guard master > 0 else { throw ServicesError("not running under swsgi") }
        if kill(master, SIGHUP) != 0 { throw SyscallError("kill", context: "SIGHUP to the master") }
    }
}

/// `UWSGIBinding.cacheHandle`: a `--cache2` cache as a binding calls it per operation.
package struct UWSGICacheHandle {
    let cache: SharedCache
    /// Not generic, so the binding's call is specialised here: `body` makes the caller's object from the value in place.
    package func read(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> OpaquePointer?) throws -> OpaquePointer?? {
        try cache.read(key, body)
    }
    /// `replace: false` leaves a live entry alone and returns false (cache_set).
    package func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, expires: Int, replace: Bool) throws -> Bool {
        try cache.set(raw: key, value, expiresInSeconds: expires, replace: replace)
    }
    package func delete(_ key: UnsafeRawBufferPointer) throws -> Bool { try cache.delete(raw: key) }
    package func exists(_ key: UnsafeRawBufferPointer) throws -> Bool { try cache.exists(raw: key) }
    package func increment(_ key: UnsafeRawBufferPointer, by delta: Int64) throws -> Int64 { try cache.increment(raw: key, by: delta) }
}
