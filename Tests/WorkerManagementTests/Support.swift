import Foundation
import Glibc
import Testing

/// Every suite here starts real swsgi processes: they all hang under this one and run one at a time.
@Suite(.serialized) struct WorkerManagementIntegration {}

struct WMFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: clocks and waiting

/// Monotonic seconds.
func monoNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Wall-clock milliseconds since the epoch (what swsgi's log timestamps count).
func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Polls `condition` every 15 ms (without holding a cooperative thread) until it holds; throws after `timeout` s.
func waitFor(_ timeout: Double, _ what: @autoclosure () -> String, _ condition: () throws -> Bool) async throws {
    let deadline = monoNow() + timeout
    while true {
        if try condition() { return }
        if monoNow() >= deadline { throw WMFailure("timed out after \(timeout)s waiting for: \(what())") }
        try await Task.sleep(nanoseconds: 15_000_000)
    }
}

/// Runs blocking work (socket I/O) on its own thread, so the test's cooperative threads stay free.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// A value shared between client threads and the test.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func update<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&value) }
}

// MARK: binaries, folders, processes

/// swsgi as `swift build` put it: next to the test bundle.
func swsgiBinary() throws -> String {
    var candidates: [String] = []
    let arg0 = CommandLine.arguments[0]
    if let real = realpath(arg0, nil) {
        candidates.append((String(cString: real) as NSString).deletingLastPathComponent)
        free(real)
    }
    candidates.append((arg0 as NSString).deletingLastPathComponent)
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 {
        let exe = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        candidates.append((exe as NSString).deletingLastPathComponent)
    }
    for dir in candidates {
        // The bundle may be a directory (x.xctest/...); walk up a few levels.
        var d = dir
        for _ in 0..<4 {
            if access(d + "/swsgi", X_OK) == 0 { return d + "/swsgi" }
            d = (d as NSString).deletingLastPathComponent
        }
    }
    throw WMFailure("swsgi not found next to the test bundle (\(candidates)): run `swift build` first")
}

/// A fresh short `/tmp/wm-XXXXXX` folder (socket paths stay far below 107 bytes).
func makeTempDir() throws -> String {
    var template = Array("/tmp/wm-XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw WMFailure("mkdtemp: \(String(cString: strerror(errno)))") }
    return String(cString: p)
}

/// /proc/PID/stat state letter, nil when the pid is gone.
func processState(_ pid: Int32) -> Character? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").first?.first
}

func isAlive(_ pid: Int32) -> Bool {
    guard let s = processState(pid) else { return false }
    return s != "Z" && s != "X"
}

/// One running swsgi master (and its workers), stderr in a file in its own temp folder.
final class Swsgi: @unchecked Sendable {
    let dir: String
    let socket: String
    let statsPath: String
    let logPath: String
    let process: Process
    /// Every worker pid seen (stats or log), checked gone at the end.
    var seenPIDs = Set<Int32>()
    private var stopped = false

    var pid: Int32 { process.processIdentifier }

    /// Starts `swsgi --socket DIR/s --stats DIR/st ARGS` and waits for "N workers accepting".
    static func start(_ args: [String], readyTimeout: Double = 10) async throws -> Swsgi {
        let s = try Swsgi(args)
        do {
            try await waitFor(readyTimeout, "swsgi ready; log:\n\(s.log())") {
                if !s.process.isRunning { throw WMFailure("swsgi exited early (\(s.process.terminationStatus)); log:\n\(s.log())") }
                return s.log().contains("workers accepting")
            }
            _ = try s.stats()
        } catch {
            s.stop()
            throw error
        }
        return s
    }

    private init(_ args: [String]) throws {
        dir = try makeTempDir()
        socket = dir + "/s"
        statsPath = dir + "/st"
        logPath = dir + "/log"
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WMFailure("open \(logPath): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: try swsgiBinary())
        process.arguments = ["--socket", socket, "--stats", statsPath] + args
        process.standardError = handle
        process.standardOutput = handle
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    func logLines() -> [String] { log().split(separator: "\n").map(String.init) }
    func lines(containing s: String) -> [String] { logLines().filter { $0.contains(s) } }

    /// Waits for a log line containing `text` (the `occurrence`-th one) and returns it.
    @discardableResult
    func waitForLine(_ text: String, occurrence: Int = 1, timeout: Double) async throws -> String {
        var found: String? = nil
        try await waitFor(timeout, "log line '\(text)' #\(occurrence); log:\n\(log().suffix(3000))") {
            let l = lines(containing: text)
            if l.count >= occurrence { found = l[occurrence - 1]; return true }
            return false
        }
        return found!
    }

    /// The stats socket's raw JSON (written on connect).
    func stats() throws -> StatsView {
        let text = try rawStats(statsPath)
        guard let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw WMFailure("stats: not a JSON object: \(text)")
        }
        let v = StatsView(obj)
        for w in v.workers { seenPIDs.insert(w.pid) }
        return v
    }

    /// SIGINT (immediate stop), then SIGKILL if it lingers; reaps the master, waits for the workers to be
    /// gone, removes the temp folder. Safe to call twice.
    func stop() {
        guard !stopped else { return }
        stopped = true
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            let deadline = monoNow() + 6
            while process.isRunning && monoNow() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        // Workers die with the master (PDEATHSIG SIGKILL). Reap any that were handed to us; SIGKILL
        // only pids the stats socket reported that are still swsgi processes.
        let deadline = monoNow() + 3
        for p in seenPIDs where p != process.processIdentifier {
            var st: Int32 = 0
            while isSwsgi(p) && monoNow() < deadline { _ = waitpid(p, &st, WNOHANG); usleep(10_000) }
            if isSwsgi(p) { kill(p, SIGKILL); _ = waitpid(p, &st, WNOHANG) }
        }
        logPIDs = Set(logLines().flatMap(pidsIn))
        try? FileManager.default.removeItem(atPath: dir)
    }

    private var logPIDs = Set<Int32>()

    /// swsgi processes (stats-reported or named in the log) still alive after `stop()` (should be none).
    func survivors() -> [Int32] { seenPIDs.union(logPIDs).filter(isSwsgi).sorted() }
}

/// A live (non-zombie) process running swsgi: guards against acting on a recycled pid.
func isSwsgi(_ pid: Int32) -> Bool {
    guard isAlive(pid), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
    return String(decoding: data, as: UTF8.self).contains("swsgi")
}

/// `(pid 123)` and `[pid 123]` in a log line.
func pidsIn(_ line: String) -> [Int32] {
    var out: [Int32] = []
    var rest = Substring(line)
    while let r = rest.range(of: "pid ") {
        let digits = rest[r.upperBound...].prefix { $0.isNumber }
        if let p = Int32(digits) { out.append(p) }
        rest = rest[r.upperBound...]
    }
    return out
}

/// Log timestamp `2026-11-23T20:20:08.028Z` at the start of a master line, as epoch milliseconds.
func logTimeMillis(_ line: String) -> Int64? {
    let s = Array(line.utf8.prefix(24))
    guard s.count == 24, s[10] == UInt8(ascii: "T"), s[19] == UInt8(ascii: "."), s[23] == UInt8(ascii: "Z") else { return nil }
    func num(_ a: Int, _ b: Int) -> Int32? { Int32(String(decoding: s[a..<b], as: UTF8.self)) }
    guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16),
          let sec = num(17, 19), let ms = num(20, 23) else { return nil }
    var t = tm()
    t.tm_year = y - 1900; t.tm_mon = mo - 1; t.tm_mday = d; t.tm_hour = h; t.tm_min = mi; t.tm_sec = sec
    return Int64(timegm(&t)) * 1000 + Int64(ms)
}

/// The number after `key` in `line` (`running 1003 ms` -> 1003 for key "running ").
func number(after key: String, in line: String) -> Int? {
    guard let r = line.range(of: key) else { return nil }
    return Int(line[r.upperBound...].prefix { $0.isNumber })
}

// MARK: stats

struct WorkerView {
    let id: Int
    let pid: Int32
    let status: String
    let requests: Int
    let harakiriCount: Int
    let respawnCount: Int
    let requestAgeMs: Int?
}

struct StatsView {
    let listenQueue: Int?
    let workers: [WorkerView]

    init(_ o: [String: Any]) {
        listenQueue = o["listen_queue"] as? Int
        workers = ((o["workers"] as? [[String: Any]]) ?? []).map {
            WorkerView(id: $0["id"] as? Int ?? -1, pid: Int32($0["pid"] as? Int ?? -1), status: $0["status"] as? String ?? "",
                       requests: $0["requests"] as? Int ?? -1, harakiriCount: $0["harakiri_count"] as? Int ?? -1,
                       respawnCount: $0["respawn_count"] as? Int ?? -1, requestAgeMs: $0["request_age_ms"] as? Int)
        }
    }

    var active: [WorkerView] { workers.filter { $0.status != "retiring" } }
    var pids: Set<Int32> { Set(workers.map(\.pid)) }
}

func rawStats(_ path: String) throws -> String {
    let fd = try unixConnect(path, timeout: 2)
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    let deadline = monoNow() + 3
    while true {
        let left = deadline - monoNow()
        if left <= 0 { throw WMFailure("stats: no end of answer within 3 s") }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&p, 1, Int32(left * 1000) + 1)
        if ready < 0 && errno != EINTR { throw WMFailure("stats poll: \(errno)") }
        // Nothing to read yet: loop to the deadline check instead of blocking in read.
        if ready == 0 { continue }
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { out += buf[0..<n]; continue }
        if n == 0 { break }
        if errno != EAGAIN && errno != EINTR { break }
    }
    return String(decoding: out, as: UTF8.self)
}

// MARK: raw HTTP over a Unix socket

/// A connected Unix stream socket (close-on-exec), connect bounded by `timeout`.
func unixConnect(_ path: String, timeout: Double) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw WMFailure("socket: \(String(cString: strerror(errno)))") }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw WMFailure("socket path too long: \(path)") }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if rc != 0 {
        let e = errno
        close(fd)
        throw HTTPClientError.connect(e)
    }
    return fd
}

enum HTTPClientError: Error, CustomStringConvertible, Equatable {
    case connect(Int32)
    case write(Int32)
    case timeout(gotBytes: Int)
    /// The server closed (EOF or reset) before any byte of the response.
    case closedBeforeResponse
    case closedMidResponse(gotBytes: Int)
    case malformed(String)

    var description: String {
        switch self {
        case .connect(let e): return "connect: \(String(cString: strerror(e)))"
        case .write(let e): return "write: \(String(cString: strerror(e)))"
        case .timeout(let n): return "timed out (\(n) bytes of response)"
        case .closedBeforeResponse: return "connection closed before any response byte"
        case .closedMidResponse(let n): return "connection closed mid-response after \(n) bytes"
        case .malformed(let s): return "malformed response: \(s)"
        }
    }
}

struct HTTPResponse: Sendable {
    let status: Int
    let headers: [String: String]
    let body: String
    /// The server keeps the connection open for another request.
    let keepAlive: Bool
}

/// One client connection: write requests, read responses (Content-Length, chunked or until EOF).
final class HTTPConnection {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var isOpen = true
    /// Wall-clock ms of the last request's write.
    private(set) var lastSentAtMillis: Int64 = 0

    init(_ path: String, timeout: Double = 5) throws { fd = try unixConnect(path, timeout: timeout) }
    deinit { close(fd) }

    func send(_ request: String) throws {
        let bytes = Array(request.utf8)
        lastSentAtMillis = wallMillis()
        var off = 0
        while off < bytes.count {
            // send + MSG_NOSIGNAL: a server that closed first must give EPIPE, not kill the test process.
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw HTTPClientError.write(errno) }
            off += n
        }
    }

    /// false on EOF/reset.
    private func fill(until deadline: Double) throws -> Bool {
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let left = deadline - monoNow()
            if left <= 0 { throw HTTPClientError.timeout(gotBytes: buffer.count) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left * 1000) + 1)
            if r < 0 { if errno == EINTR { continue }; throw HTTPClientError.malformed("poll errno \(errno)") }
            if r == 0 { continue }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { buffer += buf[0..<n]; return true }
            if n == 0 { isOpen = false; return false }
            if errno == EINTR || errno == EAGAIN { continue }
            isOpen = false
            return false
        }
    }

    func readResponse(timeout: Double) throws -> HTTPResponse {
        let deadline = monoNow() + timeout
        let sep: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = nil
        while headEnd == nil {
            if let i = find(sep, in: buffer) { headEnd = i; break }
            if try !fill(until: deadline) {
                throw buffer.isEmpty ? HTTPClientError.closedBeforeResponse : HTTPClientError.closedMidResponse(gotBytes: buffer.count)
            }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError.malformed(statusLine)
        }
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        buffer = Array(buffer[(headEnd! + 4)...])
        var body: [UInt8] = []
        let connection = headers["connection"]?.lowercased() ?? ""
        var keepAlive = parts[0] == "HTTP/1.1" ? !connection.contains("close") : connection.contains("keep-alive")
        if let cl = headers["content-length"].flatMap(Int.init) {
            while buffer.count < cl {
                if try !fill(until: deadline) { throw HTTPClientError.closedMidResponse(gotBytes: headEnd! + 4 + buffer.count) }
            }
            body = Array(buffer[0..<cl])
            buffer.removeFirst(cl)
        } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let crlf: [UInt8] = [13, 10]
                while find(crlf, in: buffer) == nil { if try !fill(until: deadline) { throw HTTPClientError.closedMidResponse(gotBytes: body.count) } }
                let le = find(crlf, in: buffer)!
                let sizeText = String(decoding: buffer[0..<le], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw HTTPClientError.malformed("chunk size") }
                while buffer.count < le + 2 + size + 2 { if try !fill(until: deadline) { throw HTTPClientError.closedMidResponse(gotBytes: body.count) } }
                body += buffer[(le + 2)..<(le + 2 + size)]
                buffer.removeFirst(le + 2 + size + 2)
                if size == 0 { break }
            }
        } else {
            while try fill(until: deadline) {}
            body = buffer
            buffer = []
            keepAlive = false
        }
        return HTTPResponse(status: status, headers: headers, body: String(decoding: body, as: UTF8.self), keepAlive: keepAlive)
    }
}

private func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    var i = 0
    while i <= hay.count - needle.count {
        if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        i += 1
    }
    return nil
}

/// `GET path` on a new connection; `http10` sends HTTP/1.0, else HTTP/1.1 with `Connection: close`.
func request(_ socket: String, _ path: String, http10: Bool = false, timeout: Double = 5) throws -> HTTPResponse {
    let c = try HTTPConnection(socket, timeout: timeout)
    try c.send(http10 ? "GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n" : "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return try c.readResponse(timeout: timeout)
}

/// A request running on its own thread; the outcome is collected later.
final class InFlight: @unchecked Sendable {
    let sentAtMillis = Locked<Int64?>(nil)
    let startedAt = monoNow()
    private let task: Task<Result<HTTPResponse, HTTPClientError>, Error>
    private let finishedAt = Locked<Double?>(nil)

    init(_ socket: String, _ path: String, timeout: Double) {
        let sent = sentAtMillis, finished = finishedAt
        task = Task.detached {
            try await onThread {
                defer { finished.set(monoNow()) }
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

    var isFinished: Bool { finishedAt.get() != nil }
    /// Seconds from start to the outcome.
    var duration: Double? { finishedAt.get().map { $0 - startedAt } }
    func result() async throws -> Result<HTTPResponse, HTTPClientError> { try await task.value }
}

// MARK: load

/// 2-4 client threads looping until stopped: keep-alive HTTP/1.1 connections (several requests each)
/// mixed with a new connection per request (HTTP/1.0 and HTTP/1.1 `Connection: close`).
final class LoadGenerator: @unchecked Sendable {
    struct Tally { var ok = 0; var failures: [String] = []; var keepAliveReused = 0 }
    let tally = Locked(Tally())
    private let running = Locked(true)
    private let live = Locked(0)
    let socket: String
    let path: String

    init(socket: String, path: String = "/", clients: Int = 4) {
        self.socket = socket
        self.path = path
        live.set(clients)
        for i in 0..<clients {
            Thread { [self] in
                self.loop(client: i)
                self.live.update { $0 -= 1 }
            }.start()
        }
    }

    private func record(_ outcome: Result<HTTPResponse, Error>, what: String) {
        tally.update { t in
            switch outcome {
            case .success(let r) where r.status == 200: t.ok += 1
            case .success(let r): t.failures.append("\(what): status \(r.status)")
            case .failure(let e): t.failures.append("\(what): \(e)")
            }
        }
    }

    private func loop(client: Int) {
        var round = 0
        while running.get() {
            round += 1
            // Even clients favour keep-alive, odd ones new connections; each also does the other now and then.
            let keepAlive = (client % 2 == 0) != (round % 5 == 0)
            if keepAlive {
                guard let c = try? HTTPConnection(socket) else { record(.failure(HTTPClientError.connect(errno)), what: "connect"); continue }
                for n in 0..<8 where running.get() {
                    do {
                        try c.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
                        let r = try c.readResponse(timeout: 5)
                        record(.success(r), what: "keep-alive request \(n + 1)")
                        if n > 0 { tally.update { $0.keepAliveReused += 1 } }
                        if !r.keepAlive { break }
                    } catch {
                        record(.failure(error), what: "keep-alive request \(n + 1)")
                        break
                    }
                }
            } else {
                let http10 = round % 2 == 0
                record(Result { try request(socket, path, http10: http10) }, what: http10 ? "HTTP/1.0 request" : "HTTP/1.1 close request")
            }
        }
    }

    /// Stops the clients and waits for them (each finishes its current request).
    func stop() async throws -> Tally {
        running.set(false)
        try await waitFor(15, "load clients to finish") { live.get() == 0 }
        return tally.get()
    }
}
