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
        try connection.input.withLock {
            if finished { throw RequestBodyError(status: 400, message: "wsgi.input read after its request was over") }
            return try pull()
        }
    }

    override func serialized<T>(_ body: () throws -> T) rethrows -> T { try connection.input.withLock(body) }

    private func timedOut() -> RequestBodyError {
        failed = true
        return RequestBodyError(status: 408, message: "request body not received in time")
    }

    /// Bytes after the body: the next pipelined request. Empty until the body is complete, and when an app's thread
    /// held the body as the request ended (its state is that thread's).
    var leftover: ArraySlice<UInt8> { !abandoned && (bodiless || decoder.isDone) ? input : [] }
    /// `finish` found an app's thread in a read of the body: the body is that thread's until it returns.
    private var abandoned = false
    /// The last `finish` found the body incomplete only because the rest had not arrived yet.
    private var restNotArrived = false
    /// How long the worker waits, after the response, for the rest of a body the app left unread (`finishAfterResponse`).
    static let afterResponseWaitMilliseconds: Int32 = 100

    func pull() throws -> [UInt8]? {
        if failed { throw RequestBodyError(status: 400, message: "request body unreadable") }
        if decoder.isDone { return nil }
        if expectContinue && !interimAsked {
            // Once: later reads ask nothing of the exchange. The rule itself (no interim response once the
            // final one has started) is the exchange's; the 100 goes out under the write lock, so no final
            // response can start between the decision and the send.
            interimAsked = true
            try connection.io.withLock {
                if connection.exchange(.bodyReadWanted) == .sendContinue {
                    try connection.sendAll(HTTPResponseWriter.continueResponse, timeoutMilliseconds: timeoutMilliseconds)
                }
            }
        }
        while true {
            if let out = try decodeHeld() { return out.isEmpty ? nil : out }
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

    /// Decodes what `input` holds: the body's next bytes; empty at the body's end; nil when `input` is used up
    /// first (more must be read).
    private func decodeHeld() throws -> [UInt8]? {
        while !input.isEmpty {
            var out: [UInt8] = []
            switch decoder.decode(input, into: &out) {
            case .needMore: input = []
            case .done(let consumed): input = input[(input.startIndex + consumed)...]
            case .error(let e):
                failed = true
                throw RequestBodyError(status: e.status, message: e.message)
            }
            if !out.isEmpty { return out }
            if decoder.isDone { return [] }
        }
        return decoder.isDone ? [] : nil
    }

    /// Ends the request's body, without waiting: consumes what the app left unread as far as it has arrived (at
    /// most `drainLimit`); false when the connection cannot carry another request (the rest has not arrived, is
    /// too large, is malformed, or an app's thread is waiting for it). Waiting here would hold the response back
    /// and the worker from its other clients for as long as the client takes (up to --body-timeout); the client
    /// is told `Connection: close` instead, and the close drops what it still sends (`Connection.bodyLeftUnread`).
    func finish() -> Bool { finish(waitingMilliseconds: 0) }

    /// Whether the body may still complete (the last `finish` lacked only bytes not arrived yet): the response can
    /// offer to keep the connection, and `finishAfterResponse` wait briefly for them.
    var mayCompleteAfterResponse: Bool { restNotArrived && !abandoned && !failed }

    /// After the response (it did not wait): the rest of the body is waited for a little (at most
    /// `afterResponseWaitMilliseconds`, within --body-timeout), so that a front server streaming it (nginx with
    /// `proxy_request_buffering off`) can finish sending and keep its connections; false when it does not come.
    func finishAfterResponse() -> Bool { finish(waitingMilliseconds: Self.afterResponseWaitMilliseconds) }

    /// For a response already sent: what has arrived, then (if only bytes not arrived yet are missing) a short wait.
    func finishOnceResponded() -> Bool { finish() || (mayCompleteAfterResponse && finishAfterResponse()) }

    private func finish(waitingMilliseconds: Int32) -> Bool {
        if abandoned { return false }
        let complete = connection.input.withLockIfFree { () -> Bool in
            finished = true
            return drainArrived(waitingMilliseconds: waitingMilliseconds)
        }
        // nil: an app's thread holds the body, in a read that waits for bytes; its request ends all the same (the
        // request's objects refuse from now on).
        if complete == nil { abandoned = true }
        connection.bodyLeftUnread = complete != true
        return complete ?? false
    }

    private func drainArrived(waitingMilliseconds: Int32) -> Bool {
        restNotArrived = false
        if failed { return false }
        if bodiless || decoder.isDone { return true }
        // The client waits for 100 Continue before sending (or was denied it): nothing we could skip.
        if !connection.io.withLock({ connection.exchange.bodyFramingKnown }) { return false }
        var drained = 0
        var waitUntil: UInt64? = nil
        var buffer = [UInt8](repeating: 0, count: 65536)
        do {
            while true {
                while let piece = try decodeHeld() {
                    if piece.isEmpty { return true }
                    drained += piece.count
                    if drained > Self.drainLimit { return false }
                }
                let n = buffer.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 {
                    input = buffer[0..<n]
                    buffer = [UInt8](repeating: 0, count: 65536)
                } else if n < 0 && errno == EINTR {
                    continue
                } else if n < 0 && errno == EAGAIN {
                    let now = monotonicNanoseconds()
                    waitUntil = waitUntil ?? now.saturatingAdd(UInt64(waitingMilliseconds) * 1_000_000)
                    let bodyEnd = deadline ?? now.saturatingAdd(bodyTimeoutNanoseconds)
                    let end = min(waitUntil!, bodyEnd)
                    if now < end, waitReadable(connection.fd, timeoutMilliseconds: Int32(clamping: (end - now) / 1_000_000 + 1)) { continue }
                    restNotArrived = true
                    return false
                } else {
                    // The client's end mid-body, or an error: not reusable.
                    if n == 0 { failed = true }
                    return false
                }
            }
        } catch { return false }
    }
}
