import Glibc
import Posix
import ServicesCore

/// Why a cache refused a write. Each refusal is counted in the master's stats.
public enum CacheError: Error, Equatable, CustomStringConvertible {
    case keyTooLarge(cache: String, bytes: Int, limit: Int)
    case valueTooLarge(cache: String, bytes: Int, limit: Int)
    case full(cache: String, items: Int)
    case notANumber(cache: String, key: String)
    case noSuchCache(String)

    public var description: String {
        switch self {
        case .keyTooLarge(let c, let n, let l): "cache '\(c)': key of \(n) bytes refused (keysize is \(l))"
        case .valueTooLarge(let c, let n, let l): "cache '\(c)': value of \(n) bytes refused (blocksize is \(l))"
        case .full(let c, let n): "cache '\(c)': full (\(n) items); entry refused"
        case .notANumber(let c, let k): "cache '\(c)': value of '\(k)' is not an 8-byte counter"
        case .noSuchCache(let c): "no cache named '\(c)' (add --cache2 name=\(c),items=N)"
        }
    }
}

/// One `--cache2` cache in shared memory, guarded by a robust mutex. A process SIGKILLed inside an
/// operation leaves an undo journal behind; the next locker (told EOWNERDEAD) rolls the half-done
/// operation back before anyone reads, so the cache is never corrupt (see `CacheLayout`).
struct SharedCache: @unchecked Sendable {
    let name: String
    let base: UnsafeMutableRawPointer
    let layout: CacheLayout
    let blockSize: Int
    let keySize: Int
    /// Crash or stall injection, for tests only (`Cache`'s underscored API); nil in every cache the server makes.
    let faults: CacheFaults?
    var mutex: RobustMutex { RobustMutex(at: base + CacheLayout.mutex) }

    init(name: String, base: UnsafeMutableRawPointer, items: Int, blockSize: Int, keySize: Int, faults: CacheFaults? = nil) {
        self.faults = faults
        self.name = name
        self.base = base
        self.blockSize = blockSize
        self.keySize = keySize
        layout = CacheLayout(items: items, blockSize: blockSize, keySize: keySize)
    }

    /// The same cache, its writes through this copy subject to `faults`.
    func injecting(_ faults: CacheFaults) -> SharedCache {
        SharedCache(name: name, base: base, items: layout.items, blockSize: blockSize, keySize: keySize, faults: faults)
    }

    // MARK: raw words

    @inline(__always) func word(_ off: Int) -> UInt64 { base.load(fromByteOffset: off, as: UInt64.self) }
    @inline(__always) func setWord(_ off: Int, _ v: UInt64) { base.storeBytes(of: v, toByteOffset: off, as: UInt64.self) }

    /// Every metadata change goes through here: the old value is saved, then the journal grows, then the
    /// word changes (release stores keep that order for a reader that takes over after a SIGKILL).
    func journaled(_ off: Int, _ v: UInt64) {
        if let faults, faults.crashed { return }
        let n = Int(word(CacheLayout.journalCount))
        precondition(n < CacheLayout.journalCapacity, "cache journal overflow")
        setWord(CacheLayout.journal + n * 16, UInt64(off))
        setWord(CacheLayout.journal + n * 16 + 8, word(off))
        SharedWord.storeRelease(base + CacheLayout.journalCount, UInt64(n + 1))
        SharedWord.storeRelease(base + off, v)
        faults?.afterJournaledStore()
    }

    /// The operation is complete: forget its undo records.
    func commit() { SharedWord.storeRelease(base + CacheLayout.journalCount, 0) }

    // MARK: set-up and recovery

    /// Fresh empty cache (master, before fork). The mapping is zeroed: nothing else to write.
    func initialize() throws {
        try mutex.initialize()
        setWord(CacheLayout.magic, CacheLayout.magicValue)
        setWord(CacheLayout.unusedFrom, 1)
    }

    private func resetToEmpty() {
        memset(base + layout.bucketsOffset, 0, layout.hashSize * 8)
        setWord(CacheLayout.freeHead, 0)
        setWord(CacheLayout.unusedFrom, 1)
        setWord(CacheLayout.count, 0)
    }

    /// Runs under the lock after EOWNERDEAD: the dead holder's operation is rolled back (or, for a
    /// clear, finished), so the cache is exactly as before it or after it.
    func recover() -> String {
        SharedWord.fetchAdd(base + CacheLayout.recoveries, 1)
        if word(CacheLayout.clearing) != 0 {
            resetToEmpty()
            setWord(CacheLayout.journalCount, 0)
            SharedWord.storeRelease(base + CacheLayout.clearing, 0)
            return "finished the clear it was running"
        }
        let n = rollBack()
        return n == 0 ? "no write was in progress" : "rolled back a write of \(n) steps"
    }

    /// Undoes the journaled stores of the current operation, newest first; how many there were.
    @discardableResult
    private func rollBack() -> Int {
        let n = min(Int(word(CacheLayout.journalCount)), CacheLayout.journalCapacity)
        for i in stride(from: n - 1, through: 0, by: -1) {
            let off = Int(word(CacheLayout.journal + i * 16))
            setWord(off, word(CacheLayout.journal + i * 16 + 8))
        }
        commit()
        return n
    }

    /// Runs `body` holding the lock; its journaled stores are committed when it returns and rolled
    /// back when it throws.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        var note: String? = nil
        try mutex.lock { note = recover() }
        if let note { ServerLog.line("cache '\(name)': a process died holding its lock; \(note)") }
        do {
            let result = try body()
            if let faults, faults.crashed {
                // A simulated death (tests): what a SIGKILL at that store would leave, recovered the same way.
                faults.crashed = false
                rollBack()
            }
            commit()
            try mutex.unlock()
            return result
        } catch {
            rollBack()
            try? mutex.unlock()
            throw error
        }
    }

    // MARK: lookups (under the lock)

    private func keyEquals(_ ref: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let it = layout.item(ref)
        guard Int(word(it + CacheLayout.keyLength)) == key.count else { return false }
        return memcmp(base + it + CacheLayout.keyStart, key.baseAddress!, key.count) == 0
    }

    /// The item holding `key` and the offset of the word that points at it.
    private func find(_ key: UnsafeRawBufferPointer) -> (ref: Int, link: Int)? {
        var link = layout.bucket(Int(CacheLayout.hash(key) & UInt64(layout.hashSize - 1)))
        var ref = Int(word(link))
        while ref != 0 {
            if keyEquals(ref, key) { return (ref, link) }
            link = layout.item(ref) + CacheLayout.next
            ref = Int(word(link))
        }
        return nil
    }

    private func expired(_ ref: Int, now: UInt64) -> Bool {
        let e = word(layout.item(ref) + CacheLayout.expiresAt)
        return e != 0 && e <= now
    }

    private func unlink(_ ref: Int, link: Int) {
        let it = layout.item(ref)
        journaled(link, word(it + CacheLayout.next))
        journaled(it + CacheLayout.next, word(CacheLayout.freeHead))
        journaled(CacheLayout.freeHead, UInt64(ref))
        journaled(CacheLayout.count, word(CacheLayout.count) - 1)
    }

    /// Drops expired entries, each as its own committed step.
    private func purgeExpired(now: UInt64) {
        for b in 0..<layout.hashSize {
            var link = layout.bucket(b)
            var ref = Int(word(link))
            while ref != 0 {
                let next = Int(word(layout.item(ref) + CacheLayout.next))
                if expired(ref, now: now) {
                    unlink(ref, link: link)
                    commit()
                } else {
                    link = layout.item(ref) + CacheLayout.next
                }
                ref = next
            }
        }
    }

    private func count(_ field: Int) { setWord(field, word(field) &+ 1) }

    // MARK: operations

    func get(_ key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try read(k) { Array($0) } }
    }

    /// The value at `k` handed to `body` in place, under the lock (a binding copies it straight into its
    /// own object: no intermediate array); nil when absent.
    func read<T>(_ k: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> T) throws -> T? {
        try withLock {
            let now = monotonicNanoseconds()
            guard let (ref, link) = find(k) else { count(CacheLayout.misses); return nil }
            if expired(ref, now: now) {
                unlink(ref, link: link)
                count(CacheLayout.misses)
                return nil
            }
            count(CacheLayout.hits)
            let n = Int(word(layout.item(ref) + CacheLayout.valueLength))
            return body(UnsafeRawBufferPointer(start: base + layout.block(ref), count: n))
        }
    }

    func exists(_ key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { try exists(raw: $0) }
    }

    func exists(raw k: UnsafeRawBufferPointer) throws -> Bool {
        try withLock {
            guard let (ref, _) = find(k), !expired(ref, now: monotonicNanoseconds()) else { count(CacheLayout.misses); return false }
            count(CacheLayout.hits)
            return true
        }
    }

    /// Refuses loudly what cannot fit: an error, a counter, a rate-limited log line.
    private func refuse(_ error: CacheError, counter: Int) -> CacheError {
        let total = SharedWord.fetchAdd(base + counter, 1) + 1
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let last = Int64(bitPattern: word(CacheLayout.lastRefusalLogSecond))
        if last != ts.tv_sec, SharedWord.compareExchange64(base + CacheLayout.lastRefusalLogSecond, last, Int64(ts.tv_sec)) {
            ServerLog.line("\(error) (\(total) refused so far for this reason; logged at most once a second)")
        }
        return error
    }

    func checkSizes(key: Int, value: Int) throws {
        if key == 0 || key > keySize { throw refuse(.keyTooLarge(cache: name, bytes: key, limit: keySize), counter: CacheLayout.refusedKey) }
        if value > blockSize { throw refuse(.valueTooLarge(cache: name, bytes: value, limit: blockSize), counter: CacheLayout.refusedValue) }
    }

    /// `replace`: update an existing entry (uWSGI's cache_update); otherwise an existing live entry is
    /// left alone and false is returned (cache_set).
    @discardableResult
    func set(_ key: [UInt8], _ value: [UInt8], expiresInSeconds: Int, replace: Bool) throws -> Bool {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in try set(raw: k, v, expiresInSeconds: expiresInSeconds, replace: replace) }
        }
    }

    @discardableResult
    func set(raw k: UnsafeRawBufferPointer, _ v: UnsafeRawBufferPointer, expiresInSeconds: Int, replace: Bool) throws -> Bool {
        try checkSizes(key: k.count, value: v.count)
        return try withLock {
            let now = monotonicNanoseconds()
            let found = find(k)
            if let (ref, _) = found, !replace, !expired(ref, now: now) { return false }
            // Saturating: an absurd expiry (any Int) means "never", not a trap in the worker.
            let expiresAt = expiresInSeconds > 0 ? now.saturatingAdd(UInt64(expiresInSeconds).saturatingMultiply(1_000_000_000)) : 0
            try store(k, v, expiresAt: expiresAt, replacing: found, now: now)
            return true
        }
    }

    /// Writes a new item off-list, then links it in place of `replacing` (or at its bucket's head).
    private func store(_ k: UnsafeRawBufferPointer, _ v: UnsafeRawBufferPointer, expiresAt: UInt64,
                       replacing: (ref: Int, link: Int)?, now: UInt64) throws {
        // Live entries never exceed `items`; the slots hold one more, so replacing an entry at capacity
        // always finds a spare slot for its new copy (written off-list, as any write).
        if Int(word(CacheLayout.count)) >= layout.items { purgeExpired(now: now) }
        var old = replacing
        // The purge may have removed (and moved the link of) the entry being replaced.
        if old != nil { old = find(k) }
        if old == nil && Int(word(CacheLayout.count)) >= layout.items {
            throw refuse(.full(cache: name, items: layout.items), counter: CacheLayout.refusedFull)
        }
        var ref = Int(word(CacheLayout.freeHead))
        if ref != 0 {
            journaled(CacheLayout.freeHead, word(layout.item(ref) + CacheLayout.next))
        } else {
            ref = Int(word(CacheLayout.unusedFrom))
            guard ref <= layout.slots else {
                throw refuse(.full(cache: name, items: layout.items), counter: CacheLayout.refusedFull)
            }
            journaled(CacheLayout.unusedFrom, UInt64(ref + 1))
        }
        let it = layout.item(ref)
        memcpy(base + it + CacheLayout.keyStart, k.baseAddress!, k.count)
        if v.count > 0 { memcpy(base + layout.block(ref), v.baseAddress!, v.count) }
        journaled(it + CacheLayout.keyLength, UInt64(k.count))
        journaled(it + CacheLayout.valueLength, UInt64(v.count))
        journaled(it + CacheLayout.expiresAt, expiresAt)
        if let (oldRef, link) = old {
            let oldItem = layout.item(oldRef)
            journaled(it + CacheLayout.next, word(oldItem + CacheLayout.next))
            journaled(link, UInt64(ref))
            journaled(oldItem + CacheLayout.next, word(CacheLayout.freeHead))
            journaled(CacheLayout.freeHead, UInt64(oldRef))
        } else {
            let bucket = layout.bucket(Int(CacheLayout.hash(k) & UInt64(layout.hashSize - 1)))
            journaled(it + CacheLayout.next, word(bucket))
            journaled(bucket, UInt64(ref))
            journaled(CacheLayout.count, word(CacheLayout.count) + 1)
        }
    }

    @discardableResult
    func delete(_ key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { try delete(raw: $0) }
    }

    @discardableResult
    func delete(raw k: UnsafeRawBufferPointer) throws -> Bool {
        try withLock {
            guard let (ref, link) = find(k) else { return false }
            let live = !expired(ref, now: monotonicNanoseconds())
            unlink(ref, link: link)
            return live
        }
    }

    /// Adds `delta` to the 8-byte counter at `key` (created at `delta` when missing); the new value.
    func increment(_ key: [UInt8], by delta: Int64) throws -> Int64 {
        try key.withUnsafeBytes { try increment(raw: $0, by: delta) }
    }

    func increment(raw k: UnsafeRawBufferPointer, by delta: Int64) throws -> Int64 {
        try checkSizes(key: k.count, value: 8)
        return try withLock {
            let now = monotonicNanoseconds()
            if let (ref, _) = find(k), !expired(ref, now: now) {
                guard word(layout.item(ref) + CacheLayout.valueLength) == 8 else {
                    throw CacheError.notANumber(cache: name, key: String(decoding: k, as: UTF8.self))
                }
                let off = layout.block(ref)
                let value = Int64(bitPattern: word(off)) &+ delta
                journaled(off, UInt64(bitPattern: value))
                return value
            }
            var value = delta
            try withUnsafeBytes(of: &value) { v in try store(k, v, expiresAt: 0, replacing: find(k), now: now) }
            return delta
        }
    }

    func clear() throws {
        try withLock {
            SharedWord.storeRelease(base + CacheLayout.clearing, 1)
            resetToEmpty()
            SharedWord.storeRelease(base + CacheLayout.clearing, 0)
        }
    }

    func keys() throws -> [[UInt8]] {
        try withLock {
            let now = monotonicNanoseconds()
            var out: [[UInt8]] = []
            for b in 0..<layout.hashSize {
                var ref = Int(word(layout.bucket(b)))
                while ref != 0 {
                    let it = layout.item(ref)
                    if !expired(ref, now: now) {
                        out.append(Array(UnsafeRawBufferPointer(start: base + it + CacheLayout.keyStart,
                                                                count: Int(word(it + CacheLayout.keyLength)))))
                    }
                    ref = Int(word(it + CacheLayout.next))
                }
            }
            return out
        }
    }

    /// Walks every chain and the free list: each item is on exactly one, and the count matches.
    /// Returns a problem description, nil when consistent.
    func checkConsistency() throws -> String? {
        try withLock {
            var seen = [Bool](repeating: false, count: layout.slots + 1)
            var live = 0
            for b in 0..<layout.hashSize {
                var ref = Int(word(layout.bucket(b)))
                while ref != 0 {
                    if ref > layout.slots || seen[ref] { return "item \(ref) reached twice from the buckets" }
                    seen[ref] = true
                    live += 1
                    ref = Int(word(layout.item(ref) + CacheLayout.next))
                }
            }
            let unused = Int(word(CacheLayout.unusedFrom))
            if unused < 1 || unused > layout.slots + 1 { return "unusedFrom is \(unused)" }
            var ref = Int(word(CacheLayout.freeHead))
            var free = layout.slots + 1 - unused
            while ref != 0 {
                if ref >= unused || seen[ref] { return "item \(ref) both free and in use, or free twice" }
                seen[ref] = true
                free += 1
                ref = Int(word(layout.item(ref) + CacheLayout.next))
            }
            for r in unused..<(layout.slots + 1) where seen[r] { return "item \(r) in use past unusedFrom" }
            if live != Int(word(CacheLayout.count)) { return "count says \(word(CacheLayout.count)), chains hold \(live)" }
            if live > layout.items { return "\(live) live items above the capacity \(layout.items)" }
            if live + free != layout.slots { return "\(layout.slots - live - free) items lost" }
            return nil
        }
    }

    /// Everything a rollback must restore: the header words, buckets, every item header, and the key and
    /// value of each live item (free items' bytes do not matter). For the crash-point tests.
    func snapshot() throws -> [UInt8] {
        try withLock {
            var out: [UInt8] = []
            func add(_ off: Int, _ n: Int) { out += UnsafeRawBufferPointer(start: base + off, count: n) }
            for f in [CacheLayout.count, CacheLayout.freeHead, CacheLayout.unusedFrom, CacheLayout.clearing] { add(f, 8) }
            add(layout.bucketsOffset, layout.hashSize * 8)
            for ref in 1...layout.slots { add(layout.item(ref), CacheLayout.keyStart) }
            for b in 0..<layout.hashSize {
                var ref = Int(word(layout.bucket(b)))
                while ref != 0 {
                    let it = layout.item(ref)
                    add(it + CacheLayout.keyStart, Int(word(it + CacheLayout.keyLength)))
                    add(layout.block(ref), Int(word(it + CacheLayout.valueLength)))
                    ref = Int(word(it + CacheLayout.next))
                }
            }
            return out
        }
    }

    struct Figures {
        let name: String, capacity: Int, items: Int, hits: Int, misses: Int, refusedKey: Int, refusedValue: Int, refusedFull: Int, recoveries: Int
    }

    /// Read without the lock: stats only.
    var figures: Figures {
        Figures(name: name, capacity: layout.items, items: Int(word(CacheLayout.count)), hits: Int(word(CacheLayout.hits)),
                misses: Int(word(CacheLayout.misses)), refusedKey: Int(word(CacheLayout.refusedKey)),
                refusedValue: Int(word(CacheLayout.refusedValue)), refusedFull: Int(word(CacheLayout.refusedFull)),
                recoveries: Int(word(CacheLayout.recoveries)))
    }
}
