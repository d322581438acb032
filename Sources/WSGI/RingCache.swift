/// A few entries looked up linearly (cheaper than hashing for so few), the oldest replaced when full so
/// that hostile values cannot grow it. The environ's and start_response's caches of Python objects are
/// built on it; each releases the objects of the entry `insert` evicts, which is out of the cache by
/// then (a release can run Python code, a `__del__`, that looks in the cache again).
struct RingCache<Entry> {
    private var entries: [Entry] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        entries.reserveCapacity(capacity)
    }

    /// `body` over the entries in place: walking them by value would retain and release each one.
    func lookup<T>(_ body: (UnsafeBufferPointer<Entry>) -> T) -> T {
        entries.withUnsafeBufferPointer(body)
    }

    /// Adds `entry`; when full, replaces the oldest and returns it.
    mutating func insert(_ entry: Entry) -> Entry? {
        guard entries.count >= capacity else {
            entries.append(entry)
            return nil
        }
        let evicted = entries[next]
        entries[next] = entry
        next = (next + 1) % capacity
        return evicted
    }
}
