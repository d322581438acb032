/// Where everything of one shared cache lives inside its bytes. Pure arithmetic, no memory access.
///
/// ```
/// header (512 B): robust mutex, counters, free-list head, undo journal
/// buckets:        hashSize words, each 1 + the index of the first item in the chain (0 = empty)
///                 (free items: a list of released ones, then every item from `unusedFrom` on)
/// items:          slots x (keyLen, valueLen, expiresAt, next, key bytes)
/// blocks:         slots x blocksize: item i's value lives in block i
/// slots = items + 1: at most `items` entries are live, so an update at capacity always has a spare slot
/// to write its new copy into before the old one is freed.
/// ```
/// Every metadata word (bucket, item header, free-list head, count) changes only through the undo
/// journal; key and value bytes are written only into an item that is off every list, so a rollback
/// leaves them unreachable.
struct CacheLayout: Equatable {
    /// The capacity: live entries never exceed it.
    let items: Int
    /// One more than the capacity (the spare an update writes into).
    var slots: Int { items + 1 }
    let blockBytes: Int
    let keyBytes: Int
    let hashSize: Int

    init(items: Int, blockSize: Int, keySize: Int) {
        self.items = items
        blockBytes = (blockSize + 7) & ~7
        keyBytes = (keySize + 7) & ~7
        var h = 1
        while h < items { h <<= 1 }
        hashSize = h
    }

    // Header fields (byte offsets from the cache's base).
    static let mutex = 0
    static let magic = 64
    static let count = 72
    static let hits = 80
    static let misses = 88
    static let refusedKey = 96
    static let refusedValue = 104
    static let refusedFull = 112
    static let freeHead = 120
    static let journalCount = 128
    /// Non-zero while `clear` runs: recovery finishes the clear instead of undoing it.
    static let clearing = 136
    static let recoveries = 144
    static let lastRefusalLogSecond = 152
    /// 1 + the index of the first item never used; it and every item after it are free. Items are
    /// taken from here once the free list is empty, so start-up touches no item page (a big cache
    /// costs memory only as it fills).
    static let unusedFrom = 160
    static let journal = 192
    static let journalCapacity = 20
    static let headerBytes = journal + journalCapacity * 16

    static let magicValue: UInt64 = 0x5357_5347_4943_4832  // "SWSGICH2"

    // Item fields.
    static let keyLength = 0
    static let valueLength = 8
    static let expiresAt = 16
    static let next = 24
    static let keyStart = 32

    var bucketsOffset: Int { Self.headerBytes }
    func bucket(_ i: Int) -> Int { bucketsOffset + i * 8 }
    var itemsOffset: Int { bucketsOffset + hashSize * 8 }
    var itemBytes: Int { Self.keyStart + keyBytes }
    /// Item `ref` is 1-based (0 means none).
    func item(_ ref: Int) -> Int { itemsOffset + (ref - 1) * itemBytes }
    var blocksOffset: Int { itemsOffset + slots * itemBytes }
    func block(_ ref: Int) -> Int { blocksOffset + (ref - 1) * blockBytes }
    var totalBytes: Int { (blocksOffset + slots * blockBytes + 63) & ~63 }

    /// FNV-1a: cheap, and good enough spread for a chained table.
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
