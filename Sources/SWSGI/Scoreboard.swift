import Glibc

/// Per-worker figures in memory shared by the master and its workers (mapped before the first fork),
/// so the master and the stats server read them without asking busy workers anything.
/// Each worker writes only its own slot; readers tolerate a torn path string (stats only).
final class Scoreboard {
    static let slotBytes = 256
    static let pathBytes = 120
    enum Field: Int { case pid = 0, state, requests, requestStartNanos, requestCounter, harakiris, rssBytes, respawns, workerID, harakiriDeadline, busyNanos,
                    /// The request number harakiri fired for: set by the master before it sends the graceful
                    /// signal, read by the worker's SIGTERM handler to tell harakiri's TERM from a stop.
                    harakiriFiredFor }
    enum State: Int64 { case free = 0, idle = 1, busy = 2 }

    let capacity: Int
    let base: UnsafeMutableRawPointer

    init(capacity: Int) throws {
        self.capacity = capacity
        let p = mmap(nil, capacity * Self.slotBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SWSGIError("mmap(scoreboard): \(String(cString: strerror(errno)))") }
        base = p
    }

    private func slot(_ i: Int) -> UnsafeMutableRawPointer { base + i * Self.slotBytes }

    func get(_ i: Int, _ f: Field) -> Int64 { slot(i).load(fromByteOffset: f.rawValue * 8, as: Int64.self) }
    func set(_ i: Int, _ f: Field, _ v: Int64) { slot(i).storeBytes(of: v, toByteOffset: f.rawValue * 8, as: Int64.self) }

    /// The address of a field, for a reader in signal context (the worker's SIGTERM handler).
    func cell(_ i: Int, _ f: Field) -> UnsafeMutablePointer<Int64> {
        (slot(i) + f.rawValue * 8).assumingMemoryBound(to: Int64.self)
    }

    /// Clears row `i` for a new worker (WorkerPool hands out the rows: see `scoreboardIndex(forFork:)`).
    func reset(_ i: Int, workerID: Int, respawns: Int) {
        memset(slot(i), 0, Self.slotBytes)
        set(i, .state, State.idle.rawValue)
        set(i, .workerID, Int64(workerID))
        set(i, .respawns, Int64(respawns))
    }

    func release(_ i: Int) { memset(slot(i), 0, Self.slotBytes) }

    /// The running request's method and path, as the worker recorded them.
    func setRequest(_ i: Int, method: String, path: String) {
        // "METHOD path", cut to the field, NUL-terminated; copied as bytes (no joined String per request).
        let dst = slot(i) + 128
        var n = 0
        func append(_ text: String) {
            var text = text
            text.withUTF8 { b in
                let count = min(b.count, Self.pathBytes - 1 - n)
                guard count > 0, let base = b.baseAddress else { return }
                (dst + n).copyMemory(from: base, byteCount: count)
                n += count
            }
        }
        append(method)
        append(" ")
        append(path)
        dst.storeBytes(of: 0, toByteOffset: n, as: UInt8.self)
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
