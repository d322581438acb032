/// A shared cache declared with `--cache2 name=NAME,items=N,blocksize=B,keysize=K`: every worker and
/// mule sees the same entries. Operations are atomic across processes; a process killed in the middle
/// of one (harakiri) never leaves the cache locked or corrupt.
///
/// ```swift
/// let sessions = try Cache("sessions")
/// try sessions.set("user:42", Array("alice".utf8), expires: 300)   // false if the key exists
/// try sessions.update("user:42", Array("bob".utf8))                // set or overwrite
/// let who = try sessions.get("user:42")                            // [UInt8]? (nil = miss)
/// let hits = try sessions.increment("hits")                         // atomic 8-byte counter
/// ```
/// A key longer than keysize or a value longer than blocksize throws `CacheError` (and is counted in
/// the stats' `refusals` and logged at most once a second): nothing is dropped silently.
public struct Cache: Sendable {
    let store: SharedCache

    /// The cache named `name`; throws `CacheError.noSuchCache` when no `--cache2` declares it.
    public init(_ name: String) throws {
        guard let s = currentServices.setup?.caches[name] else { throw CacheError.noSuchCache(name) }
        store = s
    }

    private init(store: SharedCache) { self.store = store }

    /// The first `--cache2` (uWSGI's default cache), nil when there is none.
    public static var `default`: Cache? {
        currentServices.setup?.cacheNames.first.flatMap { try? Cache($0) }
    }

    /// Names of every configured cache, in command-line order.
    public static var names: [String] { currentServices.setup?.cacheNames ?? [] }

    public var name: String { store.name }

    /// The value, nil when missing or expired.
    public func get(_ key: String) throws -> [UInt8]? { try store.get(Array(key.utf8)) }

    /// Stores `value` unless a live entry has the key (then returns false), like uWSGI's `cache_set`.
    /// `expires`: seconds to live, 0 = forever.
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], expires: Int = 0) throws -> Bool {
        try store.set(Array(key.utf8), value, expiresInSeconds: expires, replace: false)
    }

    /// Stores `value`, replacing any entry (uWSGI's `cache_update`).
    public func update(_ key: String, _ value: [UInt8], expires: Int = 0) throws {
        try store.set(Array(key.utf8), value, expiresInSeconds: expires, replace: true)
    }

    /// Removes the entry; false when there was none.
    @discardableResult
    public func delete(_ key: String) throws -> Bool { try store.delete(Array(key.utf8)) }

    public func exists(_ key: String) throws -> Bool { try store.exists(Array(key.utf8)) }

    /// Removes every entry.
    public func clear() throws { try store.clear() }

    /// Every live key.
    public func keys() throws -> [String] { try store.keys().map { String(decoding: $0, as: UTF8.self) } }

    /// Adds `delta` to the 64-bit counter at `key` (created at `delta`), atomically; returns the new value.
    @discardableResult
    public func increment(_ key: String, by delta: Int64 = 1) throws -> Int64 { try store.increment(Array(key.utf8), by: delta) }

    /// `increment(key, by: -delta)`.
    @discardableResult
    public func decrement(_ key: String, by delta: Int64 = 1) throws -> Int64 { try store.increment(Array(key.utf8), by: -delta) }

    /// The counter at `key` (8 bytes, as `increment` stores it), nil when missing.
    public func counter(_ key: String) throws -> Int64? {
        guard let v = try get(key), v.count == 8 else { return nil }
        return v.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
    }

    /// Walks the whole structure; a description of the first inconsistency, nil when whole. For tests.
    public func consistencyProblem() throws -> String? { try store.checkConsistency() }

    /// Test hook: the same cache, but a process writing through the copy returned stops (pause(2)
    /// forever) after its next `n` journaled stores, so a test can SIGKILL it half-way through a write.
    public func _stallingAfterStores(_ n: Int) -> Cache {
        Cache(store: store.injecting(CacheFaults(storesBeforeStall: n)))
    }

    /// Test hook: runs `operation` once per crash point (after its 1st, 2nd, ... journaled store), each
    /// time simulating the writer's death there and its recovery, and compares the cache with its state
    /// before; the last run completes. Returns how many crash points were checked and any differences.
    public func _checkEveryCrashPoint(_ operation: (Cache) throws -> Void) throws -> (points: Int, problems: [String]) {
        var problems: [String] = []
        var k = 1
        while k < CacheLayout.journalCapacity + 2 {
            let before = try store.snapshot()
            let faults = CacheFaults(storesBeforeCrash: k)
            try operation(Cache(store: store.injecting(faults)))
            if faults.storesBeforeCrash != 0 || faults.crashed {
                return (k - 1, problems)  // fewer than k stores: the operation completed
            }
            if try store.snapshot() != before { problems.append("a death after store \(k) was not rolled back exactly") }
            if let p = try store.checkConsistency() { problems.append("after store \(k): \(p)") }
            k += 1
        }
        return (k - 1, problems + ["more stores than the journal holds"])
    }
}
