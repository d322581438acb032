import CGlibcShim
import Glibc
import HTTP
import Posix

/// Writes a streamed response body with the framing the head announced: chunked, a declared
/// Content-Length (never a byte more; a short stream throws so the connection closes), or
/// close-delimited for HTTP/1.0 clients.
final class StreamFraming {
    let connection: Connection
    let chunked: Bool
    let declaredLength: Int?
    let timeoutMilliseconds: Int32
    private(set) var sent = 0
    /// A body part went out with sendfile(2) (`--log-sendfile`).
    private(set) var usedSendfile = false
    /// The response head, not yet sent: it leaves with the first body bytes (or at `end`).
    private var head: [UInt8]
    /// Set by `end`: the response is complete, and a write that comes later (an app's thread holding
    /// a finished request's write()) is refused instead of landing in the next response on the connection.
    private var ended = false

    init(connection: Connection, head: [UInt8], chunked: Bool, declaredLength: Int?, timeoutMilliseconds: Int32) {
        self.connection = connection
        self.head = head
        self.chunked = chunked
        self.declaredLength = declaredLength
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// How many more bytes may go out.
    private var room: Int { declaredLength.map { $0 - sent } ?? Int.max }

    func write(_ piece: [UInt8]) throws {
        try connection.io.withLock { try writeLocked(piece) }
    }

    private func refuseWhenEnded() throws {
        if ended { throw SWSGIError("write after the response was complete (its request is over)") }
    }

    private func writeLocked(_ piece: [UInt8]) throws {
        try refuseWhenEnded()
        let n = min(piece.count, room)
        guard n > 0 else { return }
        if chunked {
            var framed = takeHead()
            framed.reserveCapacity(framed.count + n + 16)
            piece.withUnsafeBytes { HTTPResponseWriter.appendChunk(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: &framed) }
            try connection.writeAll(framed, timeoutMilliseconds: timeoutMilliseconds)
        } else if !head.isEmpty {
            var out = takeHead()
            out += piece[0..<n]
            try connection.writeAll(out, timeoutMilliseconds: timeoutMilliseconds)
        } else {
            try connection.writeAll(n == piece.count ? piece : Array(piece[0..<n]), timeoutMilliseconds: timeoutMilliseconds)
        }
        sent += n
    }

    /// sendfile(2) straight from the file to the socket; returns the bytes sent (fewer at end of file).
    func sendFile(_ fd: Int32, offset: Int, count: Int) throws -> Int {
        try connection.io.withLock { try sendFileLocked(fd, offset: offset, count: count) }
    }

    private func sendFileLocked(_ fd: Int32, offset: Int, count: Int) throws -> Int {
        try refuseWhenEnded()
        let total = min(count, room)
        guard total > 0 else { return 0 }
        usedSendfile = true
        var header = takeHead()
        if chunked { HTTPResponseWriter.appendChunkHeader(count: total, to: &header) }
        if !header.isEmpty { try connection.writeAll(header, timeoutMilliseconds: timeoutMilliseconds) }
        var position = off_t(offset)
        var done = 0
        while done < total {
            let n = shim_sendfile(connection.fd, fd, &position, total - done)
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno == EINTR { try onBlockingWriteInterrupted?(); continue }
            if errno == EAGAIN {
                if try waitWritableInterruptibly(connection.fd, timeoutMilliseconds: timeoutMilliseconds) { continue }
                throw SWSGIError("write timed out")
            }
            throw SyscallError("sendfile")
        }
        sent += done
        // A chunk announced but cut short (the file shrank) cannot be repaired: the connection must go.
        if chunked {
            if done < total { throw SWSGIError("file shorter than announced: \(done) of \(total) bytes") }
            try connection.writeAll([13, 10], timeoutMilliseconds: timeoutMilliseconds)
        }
        return done
    }

    private func takeHead() -> [UInt8] {
        defer { head = [] }
        return head
    }

    /// Ends the body: the last chunk, or a check that the declared length was met.
    func end() throws {
        try connection.io.withLock { try endLocked() }
    }

    private func endLocked() throws {
        try refuseWhenEnded()
        ended = true
        var tail = takeHead()
        if chunked { tail += HTTPResponseWriter.lastChunk }
        if !tail.isEmpty { try connection.writeAll(tail, timeoutMilliseconds: timeoutMilliseconds) }
        if let declaredLength, sent < declaredLength {
            throw SWSGIError("response body ended after \(sent) of its Content-Length \(declaredLength) bytes")
        }
    }
}
