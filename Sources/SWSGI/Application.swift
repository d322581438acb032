import Glibc
import HTTP
import Posix
import WorkerCore

/// A swsgi application: a synchronous function from a request to a response, like WSGI.
/// Each worker runs one request at a time, so an app needs no locking of its own.
public typealias Application = (Request) throws -> Response

/// The worker side of a request in hand: the worker itself, so that no closure is made per request.
protocol RequestServer: AnyObject {
    /// See `Request.startResponse`. A server implements one of the two; the other forwards to it.
    func startResponse(status: Int, reason: [UInt8]?, headers: HTTPHeaders, contentLength: Int?) throws -> ResponseStream
    func startResponse(status: Int, headers: HTTPHeaders, contentLength: Int?) throws -> ResponseStream
    /// The request's harakiri deadline moves to `nanoseconds` after its start, if that is sooner.
    func shortenHarakiri(to nanoseconds: UInt64)
}

extension RequestServer {
    /// A server that does not send the app's reason phrase sends the standard one.
    func startResponse(status: Int, reason: [UInt8]?, headers: HTTPHeaders, contentLength: Int?) throws -> ResponseStream {
        try startResponse(status: status, headers: headers, contentLength: contentLength)
    }

    func startResponse(status: Int, headers: HTTPHeaders, contentLength: Int?) throws -> ResponseStream {
        try startResponse(status: status, reason: nil, headers: headers, contentLength: contentLength)
    }
}

/// One HTTP request as an application sees it.
public final class Request {
    public let method: String
    /// The request-target as sent: path and query.
    public var target: String { query.map { path + "?" + $0 } ?? path }
    public let path: String
    public let query: String?
    public let headers: HTTPHeaders
    public let version: HTTPVersion
    /// The request body, read on demand (answers `Expect: 100-continue` on the first read).
    public let body: RequestBody
    /// The peer: `unix` for Unix sockets, `ADDRESS:PORT` for TCP.
    public let remote: String
    /// 1-based id of the worker running the request.
    public let workerID: Int
    /// Unique within the worker's lifetime: `pid-counter`.
    public var requestID: String { requestNumber.map { requestIDPrefix + String($0) } ?? requestIDPrefix }
    /// `pid-` and the counter, joined only when asked for; or the whole id with no number.
    private let requestIDPrefix: String
    private let requestNumber: UInt64?
    /// The client connection's addresses, looked up once per connection.
    let addresses: SocketAddresses
    /// The CGI variables of a request that came in the uwsgi protocol (from nginx's uwsgi_params):
    /// REMOTE_ADDR, SERVER_NAME, HTTPS and the like as the front server saw them. Nil for HTTP.
    public let cgiVariables: [(name: String, value: [UInt8])]?
    /// The worker serving the request while the app runs; nil afterwards, and for a request handed
    /// to a library app.
    var server: (any RequestServer)?

    /// Starts the response while the app still runs (WSGI's write()): the head leaves with the first
    /// body bytes, each write reaches the client before it returns, and the `Response` the app then
    /// returns only supplies the rest of the body (its status and headers are not used). A second call
    /// returns the same stream.
    /// `reason`: the reason phrase's bytes as the app gave them (nil: the standard one).
    public func startResponse(status: Int, reason: [UInt8]? = nil, headers: HTTPHeaders, contentLength: Int?) throws -> ResponseStream {
        guard let server else { throw SWSGIError("this request cannot start its response early") }
        return try server.startResponse(status: status, reason: reason, headers: headers, contentLength: contentLength)
    }

    /// `requestID`: "pid-" with `number`, or the whole id when `number` is nil.
    init(head: HTTPRequestHead, body: RequestBody, remote: String, workerID: Int, requestID: String, number: UInt64? = nil,
         addresses: SocketAddresses = SocketAddresses(fd: -1), cgiVariables: [(name: String, value: [UInt8])]? = nil,
         server: (any RequestServer)? = nil) {
        method = head.method
        path = head.path
        query = head.query
        headers = head.headers
        version = head.version
        self.body = body
        self.remote = remote
        self.workerID = workerID
        requestIDPrefix = requestID
        requestNumber = number
        self.addresses = addresses
        self.cgiVariables = cgiVariables
        self.server = server
    }

    /// The TCP peer's address and port; nil for Unix sockets.
    public var peerAddress: (host: String, port: Int)? { addresses.peer }
    /// The address and port the TCP connection arrived on; nil for Unix sockets.
    public var localAddress: (host: String, port: Int)? { addresses.local }

    /// The first value of a header, case-insensitively.
    public func header(_ name: String) -> String? { headers.first(name) }

    /// Shortens the hard timeout (harakiri) for this request only; the smaller of this and
    /// `--harakiri` wins.
    /// NaN, zero, negative or infinite seconds (or beyond 584 years) shorten nothing.
    public func setHarakiri(seconds: Double) {
        guard let ns = nanoseconds(seconds: seconds) else { return }
        server?.shortenHarakiri(to: ns)
    }
}

/// An application's answer.
public struct Response {
    /// How the body is produced.
    public enum Body {
        case bytes([UInt8])
        /// Written piece by piece with chunked framing (or close-delimited for HTTP/1.0 clients).
        case stream((ResponseStream) throws -> Void)
        /// A region of a regular file, sent with its length as Content-Length: with sendfile(2) by the worker,
        /// or, with `--offload-threads`, by an offload thread once the head is out (the worker is free at once).
        case file(ResponseFile)
    }

    public var status: Int
    /// The reason phrase's bytes as the app gave them (a WSGI status's text after the code, sent as
    /// given, PEP 3333); nil for the standard phrase.
    public var reason: [UInt8]? = nil
    public var headers: HTTPHeaders
    public var body: Body
    /// For a `.stream` body whose length is known: sent as Content-Length instead of chunked framing.
    /// A stream that ends short of it, or runs past it, closes the connection (never a corrupt next response).
    public var contentLength: Int? = nil
    /// Runs once the response is over, whatever happened (sent, HEAD, client gone, error):
    /// where an app releases what the response held (WSGI's `close()`).
    public var finish: (() -> Void)? = nil
    /// The header names were checked to be tokens where the app gave them (WSGI's start_response): not scanned
    /// again before they are written.
    package var headerNamesChecked = false

    public init(status: Int = 200, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = .bytes(body)
    }

    /// A text response, `text/plain; charset=utf-8` unless a Content-Type is given.
    public init(status: Int = 200, headers: HTTPHeaders = [:], text: String) {
        var h = headers
        if !h.contains("Content-Type") { h.append("Content-Type", "text/plain; charset=utf-8") }
        self.init(status: status, headers: h, body: Array(text.utf8))
    }

    public init(status: Int = 200, headers: HTTPHeaders = [:], stream: @escaping (ResponseStream) throws -> Void) {
        self.status = status
        self.headers = headers
        self.body = .stream(stream)
    }

    /// `file`'s bytes as the body (Content-Length: its count).
    public init(status: Int = 200, headers: HTTPHeaders = [:], file: ResponseFile) {
        self.status = status
        self.headers = headers
        self.body = .file(file)
    }
}

/// `count` bytes of the regular file `fd` from `offset`, as a response body. An offload thread gets its own
/// duplicate of the fd, so whoever owns `fd` may close it as soon as the response is handed over.
public final class ResponseFile {
    public let fd: Int32
    public let offset: Int
    public let count: Int
    /// The fd is this object's: closed when the response is released.
    private let owned: Bool

    /// `owned`: close `fd` when the response is released (false: its owner, such as a Python file, closes it).
    public init(fd: Int32, offset: Int, count: Int, owned: Bool) {
        self.fd = fd
        self.offset = max(0, offset)
        self.count = max(0, count)
        self.owned = owned
    }

    deinit { if owned { close(fd) } }

    /// The same bytes as a stream (sendfile(2) where the stream allows it): for every path that does not offload.
    var asStream: (ResponseStream) throws -> Void {
        { [self] out in
            let sent = try out.sendFile(fd, offset: offset, count: count)
            if sent < count { throw SWSGIError("file shorter than announced: \(sent) of \(count) bytes") }
        }
    }
}

/// Where a streamed response body goes; each `write` reaches the client before it returns.
public final class ResponseStream {
    let sink: ([UInt8]) throws -> Void
    let fileSink: ((Int32, Int, Int) throws -> Int)?
    init(sink: @escaping ([UInt8]) throws -> Void, fileSink: ((Int32, Int, Int) throws -> Int)? = nil) {
        self.sink = sink
        self.fileSink = fileSink
    }

    public func write(_ bytes: [UInt8]) throws { if !bytes.isEmpty { try sink(bytes) } }
    public func write(_ bytes: UnsafeRawBufferPointer) throws { if !bytes.isEmpty { try sink(Array(bytes)) } }

    /// Sends up to `count` bytes of the regular file `fd` from `offset` (sendfile(2) when the stream
    /// allows it, else read and write); returns how many were sent (fewer when the file is shorter).
    public func sendFile(_ fd: Int32, offset: Int, count: Int) throws -> Int {
        if let fileSink { return try fileSink(fd, offset, count) }
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while sent < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min($0.count, count - sent), off_t(offset + sent)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SyscallError("pread") }
            if n == 0 { break }
            try sink(Array(buffer[0..<n]))
            sent += n
        }
        return sent
    }
    public func write(_ text: String) throws { try write(Array(text.utf8)) }
}

/// A request body, pulled from the connection as the app reads it. (The worker's `BodyReader` is
/// one itself, so a request needs no closure to reach its body.)
public class RequestBody {
    private let pull: (() throws -> [UInt8]?)?

    init(pull: @escaping () throws -> [UInt8]?) { self.pull = pull }

    /// For a subclass that overrides `read`.
    init() { pull = nil }

    /// The next piece of the body, nil at its end.
    public func read() throws -> [UInt8]? { try pull?() ?? nil }

    /// Runs `body` with the request's socket I/O held by this thread (a buffer over `read` shared with
    /// other threads of the app); a body that is not a socket needs no lock.
    public func serialized<T>(_ body: () throws -> T) rethrows -> T { try body() }

    /// The whole (rest of the) body.
    public func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        while let piece = try read() { out += piece }
        return out
    }
}

/// Thrown by body reads when the client breaks the framing or exceeds a limit.
public struct RequestBodyError: Error, CustomStringConvertible {
    public let status: Int
    public let message: String
    package init(status: Int, message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { "\(status): \(message)" }
}

/// Runs in a worker when harakiri's graceful signal (--harakiri-graceful-signal, default SIGTERM)
/// arrives during a request that overran --harakiri: the moment to flush traces and error reports
/// before SIGKILL lands --harakiri-graceful-timeout seconds later. It runs inside the signal
/// handler, so it may only use async-signal-safe calls such as write(2).
public typealias HarakiriHandler = @convention(c) (Int32) -> Void

/// A connection's peer and local TCP addresses, asked of the kernel on first use only.
public final class SocketAddresses {
    let fd: Int32
    /// `fd` is a Unix socket: it has no address and port to report, so neither is asked of the kernel (two
    /// system calls per connection saved where nginx opens one per request).
    init(fd: Int32, unix: Bool = false) {
        self.fd = fd
        if unix {
            peer = nil
            local = nil
        }
    }
    public private(set) lazy var peer: (host: String, port: Int)? = socketAddress(fd, peer: true)
    /// The client a PROXY protocol header names, in place of the proxy's own address.
    func setPeer(_ p: (host: String, port: Int)) { peer = p }
    public private(set) lazy var local: (host: String, port: Int)? = socketAddress(fd, peer: false)
}

/// getpeername/getsockname of a TCP socket as (address text, port); nil for other sockets.
func socketAddress(_ fd: Int32, peer: Bool) -> (host: String, port: Int)? {
    guard fd >= 0 else { return nil }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
    }
    guard rc == 0 else { return nil }
    var text = [CChar](repeating: 0, count: 64)
    switch Int32(storage.ss_family) {
    case AF_INET:
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                var addr = a.pointee.sin_addr
                inet_ntop(AF_INET, &addr, &text, 64)
                return (String(cString: text), Int(UInt16(bigEndian: a.pointee.sin_port)))
            }
        }
    case AF_INET6:
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                var addr = a.pointee.sin6_addr
                inet_ntop(AF_INET6, &addr, &text, 64)
                return (String(cString: text), Int(UInt16(bigEndian: a.pointee.sin6_port)))
            }
        }
    default: return nil
    }
}
