import Glibc
import Posix

/// Per-worker figures in memory shared by the master and its workers (mapped before the first fork),
/// so the master and the stats server read them without asking busy workers anything.
/// Each worker writes only its own slot; readers tolerate a torn path string (stats only).
final class Scoreboard {
    static let slotBytes = 256
    static let pathBytes = 120
    enum Field: Int { case pid = 0, state, requests, requestStartNanos, requestCounter, harakiris, rssBytes, respawns, workerID, harakiriDeadline, busyNanos,
                    /// The request number harakiri fired for: set by the master before it sends the graceful
                    /// signal, read by the worker's SIGTERM handler to tell harakiri's TERM from a stop.
                    harakiriFiredFor,
                    /// The connections the worker holds plus one while it accepts; 0 while it does not (starting,
                    /// retiring, gone). Workers read each other's to take their fair share of the listen queue
                    /// (`AcceptBalance`).
                    acceptingHeld,
                    /// When the master will SIGKILL the worker (monotonic ns; 0: not set): written before it signals the
                    /// worker to retire or stop, so that a worker that hears the signal late (a request was running)
                    /// still ends what it waits for (lingering closes, offloaded transfers) before the kill (`RetireCut`).
                    killDeadline }
    enum State: Int64 { case free = 0, idle = 1, busy = 2 }

    let capacity: Int
    let base: UnsafeMutableRawPointer
    /// Request threads per worker (`--threads`): with more than one, each slot is followed by one
    /// `coreBytes` row per thread (uWSGI calls them cores), written by that thread only.
    let threads: Int
    /// Bytes from one slot to the next.
    let stride: Int
    static let coreBytes = 64
    enum CoreField: Int { case state = 0, requests, requestStartNanos }
    /// Where a core's running request text starts, and its room (NUL included).
    static let coreTextOffset = 24
    static let coreTextBytes = coreBytes - coreTextOffset

    init(capacity: Int, threads: Int = 1) throws {
        self.capacity = capacity
        self.threads = threads
        stride = Self.slotBytes + (threads > 1 ? threads * Self.coreBytes : 0)
        let p = mmap(nil, capacity * stride, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SWSGIError("mmap(scoreboard): \(String(cString: strerror(errno)))") }
        base = p
    }

    private func slot(_ i: Int) -> UnsafeMutableRawPointer { base + i * stride }
    private func core(_ i: Int, _ t: Int) -> UnsafeMutableRawPointer { slot(i) + Self.slotBytes + t * Self.coreBytes }

    func get(_ i: Int, core t: Int, _ f: CoreField) -> Int64 { core(i, t).load(fromByteOffset: f.rawValue * 8, as: Int64.self) }
    func set(_ i: Int, core t: Int, _ f: CoreField, _ v: Int64) { core(i, t).storeBytes(of: v, toByteOffset: f.rawValue * 8, as: Int64.self) }

    /// A thread's running request, "METHOD path" cut to its room.
    func setRequest(_ i: Int, core t: Int, method: String, path: String) {
        Self.writeRequest(core(i, t) + Self.coreTextOffset, room: Self.coreTextBytes, method: method, path: path)
    }

    func request(_ i: Int, core t: Int) -> String {
        String(cString: (core(i, t) + Self.coreTextOffset).assumingMemoryBound(to: CChar.self))
    }

    /// Time the worker's requests in progress have run, for busyness: with request threads, the busy
    /// threads' times over the thread count (all threads busy = the whole worker busy).
    func busyInProgressNanos(_ i: Int, now: Instant) -> Int64 {
        let n = Int64(clamping: now)
        guard threads > 1 else {
            return get(i, .state) == State.busy.rawValue ? n - get(i, .requestStartNanos) : 0
        }
        var total: Int64 = 0
        for t in 0..<threads where get(i, core: t, .state) == State.busy.rawValue {
            total += max(0, n - get(i, core: t, .requestStartNanos))
        }
        return total / Int64(threads)
    }

    func get(_ i: Int, _ f: Field) -> Int64 { slot(i).load(fromByteOffset: f.rawValue * 8, as: Int64.self) }
    func set(_ i: Int, _ f: Field, _ v: Int64) { slot(i).storeBytes(of: v, toByteOffset: f.rawValue * 8, as: Int64.self) }

    /// The address of a field, for a reader in signal context (the worker's SIGTERM handler).
    func cell(_ i: Int, _ f: Field) -> UnsafeMutablePointer<Int64> {
        (slot(i) + f.rawValue * 8).assumingMemoryBound(to: Int64.self)
    }

    /// Clears row `i` for a new worker (WorkerPool hands out the rows: see `scoreboardIndex(forFork:)`).
    func reset(_ i: Int, workerID: Int, respawns: Int) {
        memset(slot(i), 0, stride)
        set(i, .state, State.idle.rawValue)
        set(i, .workerID, Int64(workerID))
        set(i, .respawns, Int64(respawns))
    }

    func release(_ i: Int) { memset(slot(i), 0, stride) }

    /// What a worker last wrote in its own row, for `setRequest(_:method:path:unlessAlready:)`.
    struct RowText {
        var method = ""
        var path = ""
    }

    /// `setRequest`, skipped when the row already holds these bytes (a keep-alive client repeating its request):
    /// `last` is what this process wrote there last. Not by String's `==`, which takes canonically equivalent
    /// text ("é" and "e" + U+0301) for the same: the row would keep bytes this request never sent.
    func setRequest(_ i: Int, method: String, path: String, unlessAlready last: inout RowText) {
        if Self.sameBytes(method, last.method) && Self.sameBytes(path, last.path) { return }
        setRequest(i, method: method, path: path)
        last = RowText(method: method, path: path)
    }

    /// The same representation, so the same bytes: a small string's (15 bytes or fewer) bits are its bytes, a
    /// large one's name its storage (which `last` keeps alive, so no other text can take its place). A different
    /// representation proves nothing: the row is then simply written again. (Comparing the bytes themselves cost
    /// more than the copy it saves; `==` compares canonical equivalence.)
    private static func sameBytes(_ a: String, _ b: String) -> Bool {
        unsafeBitCast(a, to: (UInt64, UInt64).self) == unsafeBitCast(b, to: (UInt64, UInt64).self)
    }

    /// The running request's method and path, as the worker recorded them.
    func setRequest(_ i: Int, method: String, path: String) {
        Self.writeRequest(slot(i) + 128, room: Self.pathBytes, method: method, path: path)
    }

    private static func writeRequest(_ dst: UnsafeMutableRawPointer, room: Int, method: String, path: String) {
        // "METHOD path", cut to the field, NUL-terminated; copied as bytes (no joined String per request,
        // and no closure capturing the offset: that would cost an exclusivity check per piece).
        var n = copy(method, to: dst, at: 0, room: room)
        if n < room - 1 {
            dst.storeBytes(of: UInt8(ascii: " "), toByteOffset: n, as: UInt8.self)
            n += 1
        }
        n = copy(path, to: dst, at: n, room: room)
        dst.storeBytes(of: 0, toByteOffset: n, as: UInt8.self)
    }

    /// Copies what fits of `text`'s UTF-8 bytes to `dst + n`, leaving room for the NUL; returns the new end.
    /// A cut falls between characters (a path from the uwsgi protocol can hold any UTF-8): a character cut
    /// in two would read back as U+FFFD.
    private static func copy(_ text: String, to dst: UnsafeMutableRawPointer, at n: Int, room: Int) -> Int {
        // withUTF8 alone: a native string's bytes in place, a small one's from the stack (asking for contiguous
        // storage first failed for every small string, the usual method, and cost a second path).
        var contiguous = text
        return contiguous.withUTF8 { copy($0, to: dst, at: n, room: room) }
    }

    private static func copy(_ b: UnsafeBufferPointer<UInt8>, to dst: UnsafeMutableRawPointer, at n: Int, room: Int) -> Int {
        var count = min(b.count, room - 1 - n)
        // Cut short: back off to the start of the character the cut falls in (continuation bytes are 10xxxxxx).
        if count < b.count { while count > 0 && b[count] & 0xC0 == 0x80 { count -= 1 } }
        guard count > 0, let base = b.baseAddress else { return n }
        (dst + n).copyMemory(from: base, byteCount: count)
        return n + count
    }

    func request(_ i: Int) -> String {
        String(cString: (slot(i) + 128).assumingMemoryBound(to: CChar.self))
    }
}

/// An error swsgi reports and exits on.
public struct SWSGIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
