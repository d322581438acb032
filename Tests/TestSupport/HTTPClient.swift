import Foundation
import Glibc

// Raw HTTP/1.x clients over Unix and TCP sockets: bytes on the wire exactly as a test writes them, reads
// bounded by deadlines. `Client` is the one connection; `HTTPConnection` (worker-management tests) and the
// one-shot GETs are thin layers over it.

/// Where a client connects.
public enum Endpoint: Sendable, CustomStringConvertible {
    case unix(String)
    /// 127.0.0.1:port
    case tcp(port: UInt16)

    public var description: String {
        switch self {
        case .unix(let path): path
        case .tcp(let port): "127.0.0.1:\(port)"
        }
    }
}

/// Why a client request failed. The swsgi tests match the first three; the hupwatch tests build and read
/// the syscall form with `ClientError(stage:errno:)`, `stage` and `errno`.
public enum ClientError: Error, CustomStringConvertible, Equatable, Sendable {
    case timeout(String)
    case closed(String)
    case malformed(String)
    /// A syscall failed (`errno` 0: the answer was not what was asked for).
    case syscall(stage: String, errno: Int32)

    public init(stage: String, errno: Int32) { self = .syscall(stage: stage, errno: errno) }

    public var stage: String {
        switch self {
        case .timeout: "timeout"
        case .closed: "closed"
        case .malformed: "malformed"
        case .syscall(let stage, _): stage
        }
    }

    public var errno: Int32 {
        if case .syscall(_, let e) = self { return e }
        return 0
    }

    public var description: String {
        switch self {
        case .timeout(let s): "timed out: \(s)"
        case .closed(let s): "connection closed: \(s)"
        case .malformed(let s): "malformed response: \(s)"
        case .syscall(let stage, let e): "\(stage): \(e == 0 ? "unexpected answer" : errnoText(e))"
        }
    }
}

/// A connected stream socket (close-on-exec). `timeout` bounds a connect that would block (a Unix
/// listener whose queue is full) through SO_SNDTIMEO.
public func connectSocket(_ endpoint: Endpoint, timeout: Double) -> Result<Int32, ClientError> {
    let family = { if case .unix = endpoint { AF_UNIX } else { AF_INET } }()
    let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(ClientError(stage: "socket", errno: errno)) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let rc: Int32
    switch endpoint {
    case .unix(let path):
        guard var addr = unixAddress(path) else {
            close(fd)
            return .failure(.malformed("socket path too long: \(path)"))
        }
        rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    case .tcp(let port):
        var sin = loopbackAddress(port: port)
        rc = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        return .failure(ClientError(stage: "connect", errno: e))
    }
    return .success(fd)
}

/// A request head: `METHOD target HTTP/1.1`, `Host: test`, the given header lines, and the blank line.
public func httpGet(_ target: String, method: String = "GET", headers: [String] = []) -> String {
    "\(method) \(target) HTTP/1.1\r\nHost: test\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
}

/// One response as received.
public struct HTTPReply: Sendable {
    public var status: Int
    public var reason: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// `HTTP/1.0` or `HTTP/1.1`.
    public var version: String = "HTTP/1.1"
    /// The body had no length and ran to the end of the connection.
    public var closeDelimited: Bool = false

    public init(status: Int, reason: String, headers: [(name: String, value: String)], body: [UInt8],
                version: String = "HTTP/1.1", closeDelimited: Bool = false) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.version = version
        self.closeDelimited = closeDelimited
    }

    public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    public func headerCount(_ name: String) -> Int { headers.filter { $0.name.lowercased() == name.lowercased() }.count }
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The server keeps the connection open for another request.
    public var keepAlive: Bool {
        if closeDelimited { return false }
        let connection = header("Connection")?.lowercased() ?? ""
        return version == "HTTP/1.1" ? !connection.contains("close") : connection.contains("keep-alive")
    }
}

/// Why reading a response failed, with how many bytes of it had arrived.
public struct ResponseFailure: Error {
    public enum Kind: Sendable { case timeout, closed, malformed }
    public let kind: Kind
    public let what: String
    public let receivedBytes: Int

    var clientError: ClientError {
        switch kind {
        case .timeout: .timeout(what)
        case .closed: .closed(what)
        case .malformed: .malformed(what)
        }
    }
}

/// A blocking stream socket with deadline-bounded reads and a read buffer (for pipelining).
public final class Client {
    public private(set) var fd: Int32
    public var buffer: [UInt8] = []
    public private(set) var sawEOF = false
    /// Wall-clock ms of the last `send`.
    public private(set) var lastSentAtMillis: Int64 = 0

    /// Connects to the Unix socket at `path`; throws a `TestFailure` naming the path and errno.
    public convenience init(path: String, timeout: Double = 10) throws {
        try self.init(.unix(path), timeout: timeout)
    }

    public init(_ endpoint: Endpoint, timeout: Double = 10) throws {
        switch connectSocket(endpoint, timeout: timeout) {
        case .success(let fd): self.fd = fd
        case .failure(let e): throw TestFailure("connect \(endpoint): \(e)")
        }
    }

    /// Takes over a connected socket.
    public init(adopting fd: Int32) { self.fd = fd }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Half-closes the sending side.
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a server that closed first gives EPIPE, not a dead test process).
    public func send(_ bytes: [UInt8]) throws {
        lastSentAtMillis = wallMillis()
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.syscall(stage: "send", errno: errno)
            }
            off += n
        }
    }

    /// Reads what arrives before `deadline` into `buffer`; false on timeout. EOF/reset sets `sawEOF`.
    @discardableResult
    public func fill(until deadline: Double) -> Bool {
        let left = deadline - monotonicSeconds()
        if left <= 0 { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(max(1, left * 1000)))
        if r < 0 { return errno == EINTR }
        if r == 0 { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            buffer += chunk[0..<n]
        } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
            sawEOF = true
        }
        return true
    }

    /// Reads until the peer closes (or resets); the bytes read.
    public func readToEnd(timeout: Double) throws -> [UInt8] {
        let deadline = monotonicSeconds() + timeout
        while !sawEOF {
            if !fill(until: deadline) { throw ClientError.timeout("no EOF within \(timeout) s; got \(String(decoding: buffer, as: UTF8.self))") }
        }
        defer { buffer = [] }
        return buffer
    }

    /// True when the peer closes the connection within `timeout` without sending anything more.
    public func closesWithoutData(timeout: Double = 5) -> Bool {
        let deadline = monotonicSeconds() + timeout
        while !sawEOF && buffer.isEmpty {
            if !fill(until: deadline) { return false }
        }
        return sawEOF && buffer.isEmpty
    }

    /// Reads one response. `headRequest`: the body is not sent (HEAD). 1xx responses are returned as they are.
    public func readResponse(timeout: Double = 10, headRequest: Bool = false) throws -> HTTPReply {
        do { return try receiveResponse(timeout: timeout, headRequest: headRequest) } catch let f as ResponseFailure {
            throw f.clientError
        }
    }

    /// `readResponse` with failures that say how much had arrived.
    public func receiveResponse(timeout: Double, headRequest: Bool = false) throws -> HTTPReply {
        let deadline = monotonicSeconds() + timeout
        var taken = 0
        func take(_ n: Int) -> [UInt8] {
            let out = Array(buffer[0..<n])
            buffer.removeFirst(n)
            taken += n
            return out
        }
        func need(_ what: String, _ done: () -> Bool) throws {
            // The message quotes the buffer only when it is thrown: building it on every read made a
            // 300 KB body cost seconds.
            func had() -> String { "\(what); had \(String(decoding: buffer, as: UTF8.self).debugDescription)" }
            while !done() {
                if sawEOF { throw ResponseFailure(kind: .closed, what: had(), receivedBytes: taken + buffer.count) }
                if !fill(until: deadline) { throw ResponseFailure(kind: .timeout, what: had(), receivedBytes: taken + buffer.count) }
            }
        }
        func malformed(_ what: String) -> ResponseFailure { ResponseFailure(kind: .malformed, what: what, receivedBytes: taken + buffer.count) }
        let crlf: [UInt8] = [13, 10]
        let crlf2: [UInt8] = [13, 10, 13, 10]
        try need("waiting for a response head") { find(crlf2, in: buffer) != nil }
        let end = find(crlf2, in: buffer)!
        let headText = String(decoding: take(end + 4).dropLast(4), as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { throw malformed(statusLine) }
        var headers: [(name: String, value: String)] = []
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { throw malformed("header line \(l.debugDescription)") }
            headers.append((String(l[..<colon]), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var reply = HTTPReply(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [],
                              version: String(parts[0]))
        if (100..<200).contains(status) || status == 204 || status == 304 || headRequest { return reply }
        if reply.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            while true {
                try need("chunk size") { find(crlf, in: buffer) != nil }
                let line = String(decoding: take(find(crlf, in: buffer)! + 2).dropLast(2), as: UTF8.self)
                guard let size = Int((line.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw malformed("chunk size \(line)")
                }
                try need("chunk data") { buffer.count >= size + 2 }
                reply.body += take(size)
                guard take(2) == crlf else { throw malformed("chunk end") }
                if size == 0 { break }
            }
        } else if let cl = reply.header("Content-Length").flatMap({ Int($0) }) {
            try need("body of \(cl) bytes") { buffer.count >= cl }
            reply.body = take(cl)
        } else {
            while !sawEOF {
                if !fill(until: deadline) {
                    throw ResponseFailure(kind: .timeout, what: "no end of the body", receivedBytes: taken + buffer.count)
                }
            }
            reply.body = take(buffer.count)
            reply.closeDelimited = true
        }
        return reply
    }
}

func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    var i = 0
    while i <= hay.count - needle.count {
        if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        i += 1
    }
    return nil
}

// MARK: one GET per connection

/// One HTTP/1.0 GET on a new connection, read to EOF: the status and the body (trimmed; TestChild answers
/// with its pid), or what failed.
public func getOnce(_ endpoint: Endpoint, path: String = "/", timeoutSeconds: Double = 5)
    -> Result<(status: Int, body: String), ClientError>
{
    let c: Client
    switch connectSocket(endpoint, timeout: timeoutSeconds) {
    case .success(let fd): c = Client(adopting: fd)
    case .failure(let e): return .failure(e)
    }
    do {
        try c.send("GET \(path) HTTP/1.0\r\nHost: test\r\n\r\n")
        let r = try c.readResponse(timeout: timeoutSeconds)
        return .success((r.status, r.text.trimmingCharacters(in: .whitespacesAndNewlines)))
    } catch let e as ClientError {
        return .failure(e)
    } catch {
        return .failure(.malformed("\(error)"))
    }
}

/// One GET over the Unix socket at `path` (the hupwatch tests' one-shot client).
public func unixGet(_ path: String, timeoutSeconds: Int = 5) -> Result<(status: Int, body: String), ClientError> {
    getOnce(.unix(path), timeoutSeconds: Double(timeoutSeconds))
}

/// One GET over TCP to 127.0.0.1:port: the status code, or why not.
public func tcpGet(port: UInt16, path: String = "/", timeoutSeconds: Int = 10) -> Result<Int, ClientError> {
    getOnce(.tcp(port: port), path: path, timeoutSeconds: Double(timeoutSeconds)).map(\.status)
}

/// One GET over the Unix socket at `path`: nil when it was answered 200, else what went wrong.
public func unixGetFailure(_ path: String, timeoutSeconds: Int = 5) -> String? {
    switch unixGet(path, timeoutSeconds: timeoutSeconds) {
    case .success(let r) where r.status == 200: return nil
    case .success(let r): return "answer: status \(r.status) \(r.body.prefix(80).debugDescription)"
    case .failure(let e): return e.description
    }
}

/// The pid that answered a GET (TestChild answers with its pid), or a failure the test reports.
public func answeringPid(_ path: String) throws -> pid_t {
    switch unixGet(path) {
    case .success(let r):
        guard r.status == 200, let pid = pid_t(r.body) else { throw TestFailure("GET \(path): \(r.status) \(r.body)") }
        return pid
    case .failure(let e): throw TestFailure("GET \(path): \(e)")
    }
}

// MARK: swsgi's stats socket

/// The raw JSON text the stats socket writes on connect (connect bounded by 2 s, the answer by `timeout`).
public func rawStats(_ path: String, timeout: Double = 3) throws -> String {
    let c = try Client(path: path, timeout: 2)
    do {
        return String(decoding: try c.readToEnd(timeout: timeout), as: UTF8.self)
    } catch {
        throw TestFailure("stats: no end of answer within \(timeout) s")
    }
}

/// The stats socket's JSON object.
public func readStats(_ path: String, timeout: Double = 5) throws -> [String: Any] {
    let text = try rawStats(path, timeout: timeout)
    guard let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw TestFailure("stats: not a JSON object: \(text)")
    }
    return obj
}

public func statsWorkers(_ stats: [String: Any]) -> [[String: Any]] { stats["workers"] as? [[String: Any]] ?? [] }
