import Glibc
import HTTP
import Posix
import WorkerCore

/// Pulls one request's body from what followed the head and then from the socket, decoding
/// Content-Length or chunked framing. Sends `100 Continue` only when the app starts reading,
/// so a client never uploads a body the app will refuse.
final class BodyReader: RequestBody {
    /// An unread body larger than this is not drained after the response: the connection closes.
    static let drainLimit = 1 << 20
    private static let noBody = HTTPBodyDecoder(framing: .none)

    let connection: Connection
    var decoder: HTTPBodyDecoder
    var input: ArraySlice<UInt8>
    let expectContinue: Bool
    /// The head announced no body (none, or Content-Length: 0), as most requests: the decoder is never asked.
    let bodiless: Bool
    var interimAsked = false
    var failed = false
    let timeoutMilliseconds: Int32
    /// `--body-timeout`: the whole body must arrive within this from the app's first read, so a client
    /// trickling a byte now and then cannot hold the worker (each wait alone is bounded by `timeoutMilliseconds`).
    let bodyTimeoutNanoseconds: UInt64
    /// Set at the first read from the socket.
    var deadline: UInt64?

    init(connection: Connection, head: HTTPRequestHead, limits: HTTPLimits, initial: ArraySlice<UInt8>,
         timeoutMilliseconds: Int32, bodyTimeoutNanoseconds: UInt64) {
        self.connection = connection
        bodiless = head.framing == .none || head.framing == .contentLength(0)
        // A bodiless request's decoder is only ever asked whether it is done: one made once answers that.
        self.decoder = bodiless ? Self.noBody : HTTPBodyDecoder(framing: head.framing, limits: limits)
        self.input = initial
        self.expectContinue = head.expectContinue
        self.timeoutMilliseconds = timeoutMilliseconds
        self.bodyTimeoutNanoseconds = bodyTimeoutNanoseconds
        super.init()
    }

    /// Set by `finish`: the request is over, and a read that comes later (an app's thread holding a
    /// finished request's wsgi.input) is refused instead of taking the next request's bytes.
    var finished = false

    override func read() throws -> [UInt8]? {
        try connection.io.withLock {
            if finished { throw RequestBodyError(status: 400, message: "wsgi.input read after its request was over") }
            return try pull()
        }
    }

    override func serialized<T>(_ body: () throws -> T) rethrows -> T { try connection.io.withLock(body) }

    private func timedOut() -> RequestBodyError {
        failed = true
        return RequestBodyError(status: 408, message: "request body not received in time")
    }

    /// Bytes after the body: the next pipelined request. Empty until the body is complete.
    var leftover: ArraySlice<UInt8> { bodiless || decoder.isDone ? input : [] }

    func pull() throws -> [UInt8]? {
        if failed { throw RequestBodyError(status: 400, message: "request body unreadable") }
        if decoder.isDone { return nil }
        if expectContinue && !interimAsked {
            // Once: later reads ask nothing of the exchange. The rule itself (no interim response once the
            // final one has started) is the exchange's.
            interimAsked = true
            if connection.exchange(.bodyReadWanted) == .sendContinue {
                try connection.sendAll(HTTPResponseWriter.continueResponse, timeoutMilliseconds: timeoutMilliseconds)
            }
        }
        while true {
            if !input.isEmpty {
                var out: [UInt8] = []
                switch decoder.decode(input, into: &out) {
                case .needMore: input = []
                case .done(let consumed): input = input[(input.startIndex + consumed)...]
                case .error(let e):
                    failed = true
                    throw RequestBodyError(status: e.status, message: e.message)
                }
                if !out.isEmpty { return out }
                if decoder.isDone { return nil }
            }
            let now = monotonicNanoseconds()
            let end = deadline ?? now.saturatingAdd(bodyTimeoutNanoseconds)
            deadline = end
            if now >= end { throw timedOut() }
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = buf.withUnsafeMutableBytes { Glibc.read(connection.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                input = buf[0..<n]
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                let left = Int32(clamping: (end - now) / 1_000_000 + 1)
                if !waitReadable(connection.fd, timeoutMilliseconds: min(left, timeoutMilliseconds)) {
                    throw timedOut()
                }
            } else {
                failed = true
                throw RequestBodyError(status: 400, message: "connection closed in the middle of the request body")
            }
        }
    }

    /// Consumes what the app left unread; false when the connection cannot be reused.
    func finish() -> Bool {
        connection.io.withLock {
            defer { finished = true }
            return finished ? !failed : drain()
        }
    }

    private func drain() -> Bool {
        if failed { return false }
        if bodiless || decoder.isDone { return true }
        // The client waits for 100 Continue before sending (or was denied it): nothing we could skip.
        if !connection.exchange.bodyFramingKnown { return false }
        var drained = 0
        do {
            while let piece = try pull() {
                drained += piece.count
                if drained > Self.drainLimit { return false }
            }
            return true
        } catch { return false }
    }
}
