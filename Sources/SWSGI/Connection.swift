import Glibc
import Common
import HTTP
import Posix
import WorkerCore

/// One client connection inside a worker: its fd, the bytes read but not yet used, and its timers.
final class Connection {
    let fd: Int32
    /// What changes on every request, kept outside the object (see `Cell`): the parser and the exchange, each
    /// read or changed a few times per request, would otherwise cost a dynamic exclusivity check each time.
    private struct Hot {
        var parser: HTTPRequestParser
        var exchange = Exchange.idle
    }
    private let hot: Cell<Hot>
    var parser: HTTPRequestParser {
        unsafeAddress { UnsafePointer(hot.pointer.pointer(to: \.parser)!) }
        unsafeMutableAddress { hot.pointer.pointer(to: \.parser)! }
    }
    /// Set on a --uwsgi-socket connection: requests arrive in the uwsgi protocol (nginx's uwsgi_pass).
    var uwsgi: UwsgiRequestParser?
    /// Bytes read past the last complete request (a body's start or pipelined requests).
    var pending: [UInt8] = []
    /// When the first byte of an incomplete head arrived (for --header-timeout).
    var headStartedAt: Instant?
    var lastActivity: Instant
    /// When the connection was accepted: the first request's header timeout runs from here.
    let acceptedAt: Instant
    var requests = 0
    /// Answer the next request with `Connection: close` (retiring worker).
    var closeAfterNext = false
    /// Quiet between requests for a while: left out of the held count (`IdleConnections`).
    var countedIdle = false
    /// Registered in the worker's epoll set (a connection answered and closed on its first read never is).
    var watched = false
    /// The socket went to an offload thread with the response's body: the thread ends the connection (closing it
    /// in stages itself), so the worker only lets go of its own fd; a shutdown here would cut the transfer.
    var offloaded = false
    /// The request in hand on this connection and its response (scope, interim-response rule). Changed only
    /// through `exchange(_:)` and `begin`.
    var exchange: Exchange { hot.pointer.pointee.exchange }

    /// Starts the exchange of a new request.
    func begin(_ e: Exchange) { hot.pointer.pointee.exchange = e }

    /// Hands `event` to the exchange and returns its decision.
    func exchange(_ event: Exchange.Event) -> Exchange.Action { hot.pointer.pointee.exchange.handle(event) }
    /// Peer and local addresses, each looked up once when first asked (WSGI's REMOTE_ADDR, SERVER_NAME). Made
    /// with the connection, not lazily: a lazy property would cost an exclusivity check on every request.
    let addresses: SocketAddresses
    /// Held around each response write made for a request and each change of the exchange (see `RequestIOLock`).
    let io = RequestIOLock.make()
    /// Held around each read of a request's body (the decoder's state): apart from `io`, so that an app's thread
    /// waiting for body bytes never holds back the response (taken before `io` when both are needed).
    let input = RequestIOLock.make()
    /// The request's body was not all read when the connection was ended: the client may still be sending it, so
    /// the close waits for it (`LingeringClose`) whatever has been acknowledged, on a Unix socket too (a client
    /// whose upload failed on a closed socket might never read the answer).
    var bodyLeftUnread = false

    /// `unix` or `tcp`, from the listener that accepted it (`Request.remote`).
    let remoteLabel: String
    /// Accepted on a --uwsgi-socket: a constant, so the hot path can skip the `uwsgi` parser's
    /// exclusivity check on HTTP connections.
    let speaksUwsgi: Bool

    /// `--enable-proxy-protocol`: a constant, so HTTP connections without it skip the check below at no cost.
    let expectsProxyHeader: Bool
    /// The PROXY header has not been read yet: the bytes of it read so far.
    var proxyHeader: [UInt8]?

    init(fd: Int32, limits: HTTPLimits, now: Instant, uwsgi: Bool = false, remoteLabel: String = "unix", proxyProtocol: Bool = false) {
        self.fd = fd
        self.remoteLabel = remoteLabel
        expectsProxyHeader = proxyProtocol
        self.proxyHeader = proxyProtocol ? [] : nil
        speaksUwsgi = uwsgi
        addresses = SocketAddresses(fd: fd, unix: remoteLabel == "unix")
        hot = Cell(Hot(parser: HTTPRequestParser(limits: limits)))
        self.uwsgi = uwsgi ? UwsgiRequestParser(limits: limits) : nil
        self.lastActivity = now
        self.acceptedAt = now
    }

    deinit { close(fd) }

    /// Reads and throws away what the client sent that the server will not serve, before the server closes the
    /// connection after a response: a socket closed with unread input makes the kernel send a reset, which
    /// destroys the response's bytes still queued for a client that reads slowly (a request pipelined behind a
    /// `Connection: close` answer; RFC 9112 §9.6). Only what has arrived; at most 1 MiB, so a client that keeps
    /// sending is not read for long.
    func discardUnreadInput() {
        var budget = 1 << 20
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16384) { buf in
            while budget > 0 {
                let n = recv(fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                budget -= n
            }
        }
    }

    /// Response bytes the client has not acknowledged yet: what a close now could destroy (`LingeringClose`).
    /// None on a Unix socket, where sent bytes are in the client's queue already and a close loses none of them.
    /// When the kernel will not say, some are assumed: the close waits for the client rather than risk them.
    func unacknowledgedBytes() -> Int {
        if bodyLeftUnread { return max(1, remoteLabel == "unix" ? 1 : (try? Posix.unacknowledgedBytes(fd)) ?? 1) }
        if remoteLabel == "unix" { return 0 }
        return (try? Posix.unacknowledgedBytes(fd)) ?? 1
    }

    /// What the PROXY header step makes of newly read bytes.
    enum ProxyStep {
        /// Wait for more bytes (the header is not complete).
        case needMore
        /// Close the connection unanswered: no valid header (the reason, for the log).
        case refuse(String)
        /// The header is read (the peer address replaced by the client it names); these bytes follow it.
        case rest(ArraySlice<UInt8>)
    }

    /// Feeds newly read bytes to the PROXY header (`--enable-proxy-protocol`), before any request is parsed.
    func takeProxyHeader(_ input: ArraySlice<UInt8>) -> ProxyStep {
        guard var seen = proxyHeader else { return .rest(input) }
        let before = seen.count
        seen += input
        switch ProxyProtocol.parse(seen[...]) {
        case .needMore:
            proxyHeader = seen
            return .needMore
        case .invalid(let why):
            proxyHeader = nil
            return .refuse(why)
        case .parsed(let host, let port, let consumed):
            proxyHeader = nil
            if let host, let port { addresses.setPeer((host, port)) }
            return .rest(input[(input.startIndex + (consumed - before))...])
        }
    }

    /// Writes bytes of the final response (every byte, waiting for room up to `timeoutMilliseconds` each
    /// time the socket is full): from here no interim response may be sent for this exchange.
    func writeAll(_ bytes: [UInt8], timeoutMilliseconds: Int32) throws {
        // The start is marked under the I/O lock, where a harakiri watch decides between a 5xx and a close
        // (`HarakiriWatch`); once started, the phase stays, and later writes need not take the lock.
        if exchange.phase != .responseStarted { io.withLock { _ = exchange(.responseBytesWritten) } }
        try sendAll(bytes, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Writes bytes that are not the final response's (`100 Continue`).
    func sendAll(_ bytes: [UInt8], timeoutMilliseconds: Int32) throws {
        try bytes.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n > 0 { off += n; continue }
                if n < 0 && errno == EINTR { try onBlockingWriteInterrupted?(); continue }
                if n < 0 && errno == EAGAIN {
                    if try waitWritableInterruptibly(fd, timeoutMilliseconds: timeoutMilliseconds) { continue }
                    throw SWSGIError("write timed out")
                }
                throw SyscallError("send")
            }
        }
    }
}

