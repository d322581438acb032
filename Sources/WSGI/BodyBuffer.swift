/// wsgi.input's bytes: pulled from the connection a piece at a time as the app reads, so a large
/// upload never sits whole in memory unless the app itself asks for all of it.
final class BodyBuffer {
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false
    private let pull: () throws -> [UInt8]?

    init(pull: @escaping () throws -> [UInt8]?) { self.pull = pull }

    /// Nothing to read (outside a request).
    static func empty() -> BodyBuffer { BodyBuffer { nil } }

    private var available: Int { buffer.count - start }

    /// Pulls one more piece; false at the end of the body.
    private func fill() throws -> Bool {
        if ended { return false }
        guard let piece = try pull() else {
            ended = true
            return false
        }
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += piece
        return true
    }

    private func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[start..<(start + n)])
        start += n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 17)
            start = 0
        }
        return out
    }

    /// Up to `size` bytes (all that is left when negative); fewer only at the end of the body.
    func read(_ size: Int) throws -> [UInt8] {
        if size == 0 { return [] }
        let wanted = size < 0 ? Int.max : size
        while available < wanted, try fill() {}
        return take(min(wanted, available))
    }

    /// One line with its "\n", at most `limit` bytes when positive; empty at the end of the body.
    func readline(_ limit: Int) throws -> [UInt8] {
        let cap = limit < 0 ? Int.max : limit
        if cap == 0 { return [] }
        var scanned = 0
        while true {
            // Only as far as the line may reach: a small `limit` on a long line must not scan the
            // whole buffered body on every call.
            let end = cap >= buffer.count - start ? buffer.count : start + cap
            if start + scanned < end, let i = buffer[(start + scanned)..<end].firstIndex(of: 10) {
                return take(i - start + 1)
            }
            scanned = available
            if available >= cap { return take(cap) }
            if try !fill() { return take(available) }
        }
    }
}
