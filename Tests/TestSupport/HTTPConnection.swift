import Foundation
import Glibc

// The worker-management tests' view of a `Client`: errors that tell "closed before any byte" from
// "closed mid-response", and responses with lower-cased header names and a text body.

public enum HTTPClientError: Error, CustomStringConvertible, Equatable, Sendable {
    case connect(Int32)
    case write(Int32)
    case timeout(gotBytes: Int)
    /// The server closed (EOF or reset) before any byte of the response.
    case closedBeforeResponse
    case closedMidResponse(gotBytes: Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .connect(let e): return "connect: \(errnoText(e))"
        case .write(let e): return "write: \(errnoText(e))"
        case .timeout(let n): return "timed out (\(n) bytes of response)"
        case .closedBeforeResponse: return "connection closed before any response byte"
        case .closedMidResponse(let n): return "connection closed mid-response after \(n) bytes"
        case .malformed(let s): return "malformed response: \(s)"
        }
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Lower-cased names; the last of repeated fields.
    public let headers: [String: String]
    public let body: String
    /// The server keeps the connection open for another request.
    public let keepAlive: Bool

    public init(_ reply: HTTPReply) {
        status = reply.status
        var h: [String: String] = [:]
        for (name, value) in reply.headers { h[name.lowercased()] = value }
        headers = h
        body = reply.text
        keepAlive = reply.keepAlive
    }
}

/// A connected Unix stream socket (close-on-exec), connect bounded by `timeout`.
public func unixConnect(_ path: String, timeout: Double) throws -> Int32 {
    switch connectSocket(.unix(path), timeout: timeout) {
    case .success(let fd): return fd
    case .failure(.syscall("connect", let e)): throw HTTPClientError.connect(e)
    case .failure(let e): throw TestFailure("\(path): \(e)")
    }
}

/// One client connection: write requests, read responses (Content-Length, chunked or until EOF).
public final class HTTPConnection {
    private let client: Client
    public var fd: Int32 { client.fd }
    public var isOpen: Bool { !client.sawEOF }
    /// Wall-clock ms of the last request's write.
    public var lastSentAtMillis: Int64 { client.lastSentAtMillis }

    public init(_ path: String, timeout: Double = 5) throws { client = Client(adopting: try unixConnect(path, timeout: timeout)) }

    public func send(_ request: String) throws {
        do { try client.send(request) } catch let e as ClientError { throw HTTPClientError.write(e.errno) }
    }

    public func readResponse(timeout: Double) throws -> HTTPResponse {
        do {
            return HTTPResponse(try client.receiveResponse(timeout: timeout))
        } catch let f as ResponseFailure {
            switch f.kind {
            case .timeout: throw HTTPClientError.timeout(gotBytes: f.receivedBytes)
            case .closed where f.receivedBytes == 0: throw HTTPClientError.closedBeforeResponse
            case .closed: throw HTTPClientError.closedMidResponse(gotBytes: f.receivedBytes)
            case .malformed: throw HTTPClientError.malformed(f.what)
            }
        }
    }
}

/// `GET path` on a new connection; `http10` sends HTTP/1.0, else HTTP/1.1 with `Connection: close`.
public func request(_ socket: String, _ path: String, http10: Bool = false, timeout: Double = 5) throws -> HTTPResponse {
    let c = try HTTPConnection(socket, timeout: timeout)
    try c.send(http10 ? "GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n" : "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return try c.readResponse(timeout: timeout)
}

/// A request running on its own thread; the outcome is collected later.
public final class InFlight: @unchecked Sendable {
    public let sentAtMillis = Locked<Int64?>(nil)
    public let startedAt = monotonicSeconds()
    private let task: Task<Result<HTTPResponse, HTTPClientError>, Error>
    private let finishedAt = Locked<Double?>(nil)

    public init(_ socket: String, _ path: String, timeout: Double) {
        let sent = sentAtMillis, finished = finishedAt
        task = Task.detached {
            try await onThread {
                defer { finished.set(monotonicSeconds()) }
                do {
                    let c = try HTTPConnection(socket, timeout: timeout)
                    try c.send("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    sent.set(c.lastSentAtMillis)
                    return .success(try c.readResponse(timeout: timeout))
                } catch let e as HTTPClientError {
                    return .failure(e)
                }
            }
        }
    }

    public var isFinished: Bool { finishedAt.get() != nil }
    /// Seconds from start to the outcome.
    public var duration: Double? { finishedAt.get().map { $0 - startedAt } }
    public func result() async throws -> Result<HTTPResponse, HTTPClientError> { try await task.value }
}
