import HTTP
import WorkerCore

/// A swsgi application: a synchronous function from a request to a response, like WSGI.
/// Each worker runs one request at a time, so an app needs no locking of its own.
public typealias Application = (Request) throws -> Response

/// One HTTP request as an application sees it.
public final class Request {
    public let method: String
    /// The request-target as sent: path and query.
    public let target: String
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
    public let requestID: String
    let harakiriOverride: (UInt64) -> Void

    init(head: HTTPRequestHead, body: RequestBody, remote: String, workerID: Int, requestID: String,
         harakiriOverride: @escaping (UInt64) -> Void) {
        method = head.method
        target = head.target
        path = head.path
        query = head.query
        headers = head.headers
        version = head.version
        self.body = body
        self.remote = remote
        self.workerID = workerID
        self.requestID = requestID
        self.harakiriOverride = harakiriOverride
    }

    /// The first value of a header, case-insensitively.
    public func header(_ name: String) -> String? { headers.first(name) }

    /// Shortens the hard timeout (harakiri) for this request only; the smaller of this and
    /// `--harakiri` wins.
    /// NaN, zero, negative or infinite seconds (or beyond 584 years) shorten nothing.
    public func setHarakiri(seconds: Double) {
        guard let ns = nanoseconds(seconds: seconds) else { return }
        harakiriOverride(ns)
    }
}

/// An application's answer.
public struct Response {
    /// How the body is produced.
    public enum Body {
        case bytes([UInt8])
        /// Written piece by piece with chunked framing (or close-delimited for HTTP/1.0 clients).
        case stream((ResponseStream) throws -> Void)
    }

    public var status: Int
    public var headers: HTTPHeaders
    public var body: Body

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
}

/// Where a streamed response body goes; each `write` reaches the client before it returns.
public final class ResponseStream {
    let sink: ([UInt8]) throws -> Void
    init(sink: @escaping ([UInt8]) throws -> Void) { self.sink = sink }

    public func write(_ bytes: [UInt8]) throws { if !bytes.isEmpty { try sink(bytes) } }
    public func write(_ text: String) throws { try write(Array(text.utf8)) }
}

/// A request body, pulled from the connection as the app reads it.
public final class RequestBody {
    let pull: () throws -> [UInt8]?

    init(pull: @escaping () throws -> [UInt8]?) { self.pull = pull }

    /// The next piece of the body, nil at its end.
    public func read() throws -> [UInt8]? { try pull() }

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
    public var description: String { "\(status): \(message)" }
}

/// Runs in a worker when harakiri's graceful signal (--harakiri-graceful-signal, default SIGTERM)
/// arrives during a request that overran --harakiri: the moment to flush traces and error reports
/// before SIGKILL lands --harakiri-graceful-timeout seconds later. It runs inside the signal
/// handler, so it may only use async-signal-safe calls such as write(2).
public typealias HarakiriHandler = @convention(c) (Int32) -> Void
