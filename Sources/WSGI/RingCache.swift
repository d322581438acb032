/// A few entries looked up linearly (cheaper than hashing for so few), the oldest replaced when full so
/// that hostile values cannot grow it. The environ's and start_response's caches of Python objects are
/// built on it; each releases the objects of the entry `insert` evicts, which is out of the cache by
/// then (a release can run Python code, a `__del__`, that looks in the cache again).
///
/// A class over storage allocated once, held in a `let`: a lookup runs on every request for every
/// header, and an array in a stored `var` would cost an exclusivity check (and an array copy check)
/// each time, more than the lookup itself.
final class RingCache<Entry> {
    private let storage: UnsafeMutablePointer<Entry>
    private var count = 0
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "a RingCache holds at least one entry")
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    /// `body` over the entries in place: walking them by value would retain and release each one.
    @inline(__always)
    func lookup<T>(_ body: (UnsafeBufferPointer<Entry>) -> T) -> T {
        body(UnsafeBufferPointer(start: storage, count: count))
    }

    /// Adds `entry`; when full, replaces the oldest and returns it.
    func insert(_ entry: Entry) -> Entry? {
        guard count >= capacity else {
            (storage + count).initialize(to: entry)
            count += 1
            return nil
        }
        let evicted = (storage + next).move()
        (storage + next).initialize(to: entry)
        next = (next + 1) % capacity
        return evicted
    }
}
