// Helpers for the swsgi integration tests: temp dirs, launching real swsgi processes, waiting on
// conditions with deadlines, and a tiny raw HTTP/1.1 client over Unix sockets.
import Foundation
import Glibc
import Testing

// MARK: - Errors, clocks, polling

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; true when it held.
@discardableResult
func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = monotonicSeconds() + timeout
    while true {
        if try condition() { return true }
        if monotonicSeconds() >= deadline { return false }
        usleep(10_000)
    }
}

// MARK: - Temp dirs

/// A short private directory under /tmp (socket paths must fit in 107 bytes); `remove()` deletes it.
final class TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/swsgiT.XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))")
        }
        path = String(cString: p)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
    }

    func write(_ name: String, bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

func fileInode(_ path: String) -> UInt64? {
    var st = stat()
    return lstat(path, &st) == 0 ? UInt64(st.st_ino) : nil
}

// MARK: - The swsgi binary

/// `swsgi`, built by `swift test` next to the test bundle.
func swsgiBinary() throws -> String {
    var dirs: [String] = []
    if let first = CommandLine.arguments.first {
        dirs.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent().path)
    }
    if let exe = Bundle.main.executableURL { dirs.append(exe.resolvingSymlinksInPath().deletingLastPathComponent().path) }
    for d in dirs {
        let candidate = d + "/swsgi"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    throw TestFailure("swsgi binary not found next to the test bundle (looked in \(dirs)); build it with `swift build --product swsgi`")
}

/// This process's environment without anything that would change swsgi's configuration.
func cleanEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("SWSGI_") && !key.hasPrefix("LISTEN_") && key != "NOTIFY_SOCKET"
    }
    for (k, v) in extra { env[k] = v }
    return env
}

// MARK: - /proc

/// Direct children of `pid`, from /proc (needs CONFIG_PROC_CHILDREN).
func childPIDs(of pid: Int32) -> [Int32] {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
    return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.sorted()
}

/// argv[0] as /proc shows it (swsgi rewrites it to its process title).
func processTitle(_ pid: Int32) -> String? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
    return String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
}

func isAlive(_ pid: Int32) -> Bool {
    // From /proc only (no kill(pid, 0) on pids the test did not start); a zombie counts as gone.
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
    return state != "Z" && state != "X"
}

// MARK: - Spawning

/// posix_spawn with stdin from /dev/null, stdout and stderr appended to `outputPath`, default signal
/// dispositions and an empty signal mask, and `fd3` (if any) as fd 3. Foundation's Process closes every
/// fd above 2 in the child, so it cannot hand swsgi a socket-activation listener.
func spawnProcess(_ path: String, _ arguments: [String], environment: [String: String], outputPath: String,
                  fd3: Int32? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    if let fd3 { posix_spawn_file_actions_adddup2(&actions, fd3, 3) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attr, &mask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for sig in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = argv.withUnsafeBufferPointer { a in
        envp.withUnsafeBufferPointer { e in
            posix_spawn(&pid, path, &actions, &attr, UnsafeMutablePointer(mutating: a.baseAddress!),
                        UnsafeMutablePointer(mutating: e.baseAddress!))
        }
    }
    guard rc == 0 else { throw TestFailure("posix_spawn \(path): \(String(cString: strerror(rc)))") }
    return pid
}

// MARK: - A running swsgi

/// One swsgi master launched by a test. `stop()` (or deinit) always reaps it.
final class Server {
    let dir: TempDir
    let pid: pid_t
    /// `--socket` path (nil when the test passes its own listener).
    let socket: String?
    let stderrPath: String
    let arguments: [String]
    /// Exit status once reaped: the code, or 128 + the signal.
    private(set) var exitStatus: Int32?

    /// Launches swsgi with `arguments` ("{dir}" replaced by the temp dir; `--socket DIR/s` appended unless
    /// `socket` is nil) and, when `ready`,
    /// waits until every worker accepts. `shell`: run through `/bin/sh -c SHELL swsgi ARGS...`.
    init(_ arguments: [String], dir: TempDir, socket: String? = "s", environment: [String: String] = [:],
         shell: String? = nil, fd3: Int32? = nil, ready: Bool = true, name: String = "swsgi") throws {
        self.dir = dir
        self.socket = socket.map { dir.file($0) }
        // "{dir}" in an argument stands for the temp dir.
        var args = arguments.map { $0.replacingOccurrences(of: "{dir}", with: dir.path) }
        if let s = self.socket { args += ["--socket", s] }
        self.arguments = args
        stderrPath = dir.file("\(name).log")
        let binary = try swsgiBinary()
        if let shell {
            pid = try spawnProcess("/bin/sh", ["-c", shell, binary] + args, environment: cleanEnvironment(environment),
                                   outputPath: stderrPath, fd3: fd3)
        } else {
            pid = try spawnProcess(binary, args, environment: cleanEnvironment(environment), outputPath: stderrPath, fd3: fd3)
        }
        if ready {
            do { try waitReady() } catch {
                stop(timeout: 2)
                throw error
            }
        }
    }

    deinit { stop(timeout: 5) }

    /// Everything swsgi wrote to stderr (and stdout) so far.
    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    var logLines: [String] { log.split(separator: "\n").map(String.init) }

    /// Reaps the master if it has ended; true while it runs.
    var isRunning: Bool {
        if exitStatus != nil { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid {
            let sig = st & 0x7f
            exitStatus = sig == 0 ? (st >> 8) & 0xff : 128 + sig
            return false
        }
        if r < 0 && errno == ECHILD { exitStatus = -1; return false }
        return true
    }

    /// Waits until the master logs that all workers accept (and the socket exists).
    func waitReady(timeout: Double = 15) throws {
        let ok = waitUntil(timeout) {
            !isRunning || (log.contains("workers accepting") && (socket.map(fileExists) ?? true))
        }
        guard ok, isRunning else {
            throw TestFailure("swsgi \(arguments) did not become ready; exit status \(exitStatus.map(String.init) ?? "none"); log:\n\(log)")
        }
    }

    /// Waits until `text` occurs `count` times in the log.
    @discardableResult
    func waitForLog(_ text: String, count: Int = 1, timeout: Double = 10) -> Bool {
        waitUntil(timeout) { log.components(separatedBy: text).count - 1 >= count }
    }

    func signal(_ sig: Int32) {
        // Only the master we launched, and only while it has not been reaped.
        if isRunning { kill(pid, sig) }
    }

    /// Exit status once the master has ended within `timeout`, else nil.
    func waitExit(timeout: Double) -> Int32? {
        waitUntil(timeout) { !isRunning } ? exitStatus : nil
    }

    /// SIGTERM, then SIGKILL if it lingers; always reaps. Returns the exit status.
    @discardableResult
    func stop(timeout: Double = 10) -> Int32 {
        if isRunning {
            kill(pid, SIGTERM)
            if let s = waitExit(timeout: timeout) { return s }
            kill(pid, SIGKILL)
            _ = waitExit(timeout: 30)
        }
        return exitStatus ?? -1
    }

    /// The master's worker processes right now.
    var workers: [Int32] { childPIDs(of: pid) }

    /// Waits until the master has exactly `n` children, all titled `swsgi worker N`; returns them.
    @discardableResult
    func waitWorkers(_ n: Int, timeout: Double = 10, where extra: ([Int32]) -> Bool = { _ in true }) -> [Int32] {
        var pids: [Int32] = []
        _ = waitUntil(timeout) {
            pids = workers
            return pids.count == n && pids.allSatisfy { processTitle($0)?.hasPrefix("swsgi worker") == true } && extra(pids)
        }
        return pids
    }

    func connect() throws -> Client {
        guard let socket else { throw TestFailure("no socket path") }
        return try Client(path: socket)
    }

    /// One request on a new connection.
    func get(_ target: String, headers: [String] = [], timeout: Double = 10) throws -> HTTPReply {
        let c = try connect()
        try c.send(httpGet(target, headers: headers))
        return try c.readResponse(timeout: timeout)
    }
}

/// Runs swsgi to completion (for invocations that must fail fast): exit status and output.
func runToExit(_ arguments: [String], environment: [String: String] = [:], socket: String? = nil,
               in dir: TempDir? = nil, timeout: Double = 10) throws -> (status: Int32, output: String) {
    let d = try dir ?? TempDir()
    defer { if dir == nil { d.remove() } }
    let s = try Server(arguments, dir: d, socket: socket, environment: environment, ready: false)
    defer { s.stop(timeout: 1) }
    guard let status = s.waitExit(timeout: timeout) else {
        throw TestFailure("swsgi \(arguments) still running after \(timeout) s; log:\n\(s.log)")
    }
    return (status, s.log)
}

// MARK: - Stats

/// Reads the raw JSON the stats socket writes on connect.
func readStats(_ path: String, timeout: Double = 5) throws -> [String: Any] {
    let c = try Client(path: path)
    let bytes = try c.readToEnd(timeout: timeout)
    guard let obj = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw TestFailure("stats: not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
    }
    return obj
}

func statsWorkers(_ stats: [String: Any]) -> [[String: Any]] { stats["workers"] as? [[String: Any]] ?? [] }

// MARK: - Raw HTTP client

func httpGet(_ target: String, method: String = "GET", headers: [String] = []) -> String {
    "\(method) \(target) HTTP/1.1\r\nHost: test\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
}

struct HTTPReply {
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    func headerCount(_ name: String) -> Int { headers.filter { $0.name.lowercased() == name.lowercased() }.count }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum ClientError: Error, CustomStringConvertible {
    case timeout(String)
    case closed(String)
    case malformed(String)
    var description: String {
        switch self {
        case .timeout(let s): "timed out: \(s)"
        case .closed(let s): "connection closed: \(s)"
        case .malformed(let s): "malformed response: \(s)"
        }
    }
}

/// A blocking Unix stream socket with deadline-bounded reads and a read buffer (for pipelining).
final class Client {
    private(set) var fd: Int32
    var buffer: [UInt8] = []
    private(set) var sawEOF = false

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw TestFailure("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw TestFailure("connect \(path): \(String(cString: strerror(e)))")
        }
    }

    /// A TCP connection to 127.0.0.1:`port`.
    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let r = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw TestFailure("connect 127.0.0.1:\(port): \(String(cString: strerror(e)))")
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Half-closes the sending side.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.closed("send: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads what arrives before `deadline` into `buffer`; false on timeout. EOF/reset sets `sawEOF`.
    @discardableResult
    func fill(until deadline: Double) -> Bool {
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
    func readToEnd(timeout: Double) throws -> [UInt8] {
        let deadline = monotonicSeconds() + timeout
        while !sawEOF {
            if !fill(until: deadline) { throw ClientError.timeout("no EOF within \(timeout) s; got \(String(decoding: buffer, as: UTF8.self))") }
        }
        defer { buffer = [] }
        return buffer
    }

    /// True when the peer closes the connection within `timeout` without sending anything more.
    func closesWithoutData(timeout: Double = 5) -> Bool {
        let deadline = monotonicSeconds() + timeout
        while !sawEOF && buffer.isEmpty {
            if !fill(until: deadline) { return false }
        }
        return sawEOF && buffer.isEmpty
    }

    private func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    private func indexOf(_ pattern: [UInt8], from: Int = 0) -> Int? {
        guard buffer.count >= pattern.count + from else { return nil }
        var i = from
        while i + pattern.count <= buffer.count {
            if buffer[i] == pattern[0] && Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
            i += 1
        }
        return nil
    }

    private func need(_ what: String, deadline: Double, _ done: () -> Bool) throws {
        while !done() {
            if sawEOF { throw ClientError.closed("\(what); had \(String(decoding: buffer, as: UTF8.self).debugDescription)") }
            if !fill(until: deadline) { throw ClientError.timeout("\(what); had \(String(decoding: buffer, as: UTF8.self).debugDescription)") }
        }
    }

    /// Reads one response. `headRequest`: the body is not sent (HEAD). 1xx responses are returned as they are.
    func readResponse(timeout: Double = 10, headRequest: Bool = false) throws -> HTTPReply {
        let deadline = monotonicSeconds() + timeout
        let crlf2: [UInt8] = [13, 10, 13, 10]
        try need("waiting for a response head", deadline: deadline) { indexOf(crlf2) != nil }
        let end = indexOf(crlf2)!
        let headText = String(decoding: take(end + 4).dropLast(4), as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ClientError.malformed(statusLine)
        }
        var headers: [(String, String)] = []
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { throw ClientError.malformed("header line \(l.debugDescription)") }
            headers.append((String(l[..<colon]), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var reply = HTTPReply(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
        if (100..<200).contains(status) || status == 204 || status == 304 || headRequest { return reply }
        if reply.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                try need("chunk size", deadline: deadline) { indexOf([13, 10]) != nil }
                let line = String(decoding: take(indexOf([13, 10])! + 2).dropLast(2), as: UTF8.self)
                guard let size = Int(line.split(separator: ";")[0], radix: 16) else { throw ClientError.malformed("chunk size \(line)") }
                try need("chunk data", deadline: deadline) { buffer.count >= size + 2 }
                reply.body += take(size)
                guard take(2) == [13, 10] else { throw ClientError.malformed("chunk end") }
                if size == 0 { break }
            }
        } else if let cl = reply.header("Content-Length").flatMap({ Int($0) }) {
            try need("body of \(cl) bytes", deadline: deadline) { buffer.count >= cl }
            reply.body = take(cl)
        } else {
            reply.body = try readToEnd(timeout: max(0.01, deadline - monotonicSeconds()))
        }
        return reply
    }
}

// MARK: - Datagram sockets (sd_notify)

/// A bound Unix datagram socket that collects NOTIFY_SOCKET messages.
final class NotifySocket {
    let fd: Int32
    let path: String
    var messages: [String] = []

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { Glibc.close(fd) }

    /// Collects datagrams until one after index `after` satisfies `match`, or `timeout` passes; its index.
    func waitFor(timeout: Double, after: Int = -1, _ match: (String) -> Bool) -> Int? {
        if let i = messages.indices.first(where: { $0 > after && match(messages[$0]) }) { return i }
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, (deadline - monotonicSeconds()) * 1000))
            guard poll(&p, 1, left) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { continue }
            let msg = String(decoding: buf[0..<n], as: UTF8.self)
            messages.append(msg)
            if match(msg) { return messages.count - 1 }
        }
        return nil
    }
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    defer { Glibc.close(fd) }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sin) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TestFailure("no free port: \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: sin.sin_port)
}
