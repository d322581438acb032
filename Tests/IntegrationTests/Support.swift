import Foundation
import Glibc
import Posix
import Testing

/// Every suite that starts processes or sends signals hangs under this one, so they run one at a time.
@Suite(.serialized) struct HupwatchIntegration {}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 15 ms until it holds; throws (failing the test) after `timeout` seconds.
func waitUntil(_ timeout: Double, _ what: @autoclosure () -> String, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        if Date() >= deadline { throw TestFailure("timed out after \(timeout)s waiting for: \(what())") }
        usleep(15_000)
    }
}

// MARK: binaries

/// The folder holding the test bundle, where `swift build` put hupwatch and TestChild.
let binDirectory: String = {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    let exe = n > 0 ? String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    return splitPath(exe).directory
}()

func binary(_ name: String) throws -> String {
    let path = binDirectory + "/" + name
    guard access(path, X_OK) == 0 else {
        throw TestFailure("\(name) not found next to the test bundle at \(path): run `swift build` first")
    }
    return path
}

// MARK: temp folders

/// A fresh `/tmp/hw-XXXXXX` folder (short, so socket paths fit sun_path), removed by `remove()`.
struct TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/hw-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: p)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file(name))
    }

    func read(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }

    func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }
}

// MARK: /proc

/// The whole of a /proc file. Foundation stops after the first short read, and seq files such as
/// /proc/net/unix hand out their content one read at a time.
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return String(decoding: out, as: UTF8.self) }
        out += buf[..<n]
    }
}

func openFDs(_ pid: pid_t) -> [Int]? {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
    return names.compactMap(Int.init).sorted()
}

func fdTarget(_ pid: pid_t, _ fd: Int) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
}

func environment(of pid: pid_t) -> [String: String] {
    guard let data = readProcFile("/proc/\(pid)/environ") else { return [:] }
    var out: [String: String] = [:]
    for entry in data.split(separator: "\0") {
        let s = String(entry)
        if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
    }
    return out
}

func commandLine(of pid: pid_t) -> [String] {
    guard let data = readProcFile("/proc/\(pid)/cmdline") else { return [] }
    return data.split(separator: "\0").map(String.init)
}

func statusField(_ pid: pid_t, _ key: String) -> String? {
    guard let text = readProcFile("/proc/\(pid)/status") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [11] utime, [12] stime.
func statFields(_ pid: pid_t) -> [String]? {
    guard let text = readProcFile("/proc/\(pid)/stat"),
          let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").map(String.init)
}

/// Running (or sleeping, or stopped): present in /proc and not a zombie.
func isAlive(_ pid: pid_t) -> Bool {
    guard let state = statFields(pid)?.first else { return false }
    return state != "Z" && state != "X"
}

func cpuTicks(_ pid: pid_t) -> Int? {
    guard let f = statFields(pid), f.count > 12, let u = Int(f[11]), let s = Int(f[12]) else { return nil }
    return u + s
}

/// Pids whose parent is `pid`.
func children(of pid: pid_t) -> [pid_t] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.compactMap(Int32.init).filter { statFields($0)?[1] == String(pid) }.sorted()
}

/// The socket inode /proc/net/unix lists for a listener bound at `path` (what /proc/PID/fd shows as socket:[N]).
func boundSocketInode(_ path: String) -> String? {
    guard let text = readProcFile("/proc/net/unix") else { return nil }
    for line in text.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        if f.count >= 8, f[7] == path { return String(f[6]) }
    }
    return nil
}

/// Reaps `pid` if it has ended and is our child. Orphans (of a SIGKILLed hupwatch) belong to init, which may
/// leave them zombies: those count as gone. The test process never becomes a subreaper: other suites'
/// orphans would then pile up as its zombies.
func reapIfOurs(_ pid: pid_t) {
    var st: Int32 = 0
    _ = waitpid(pid, &st, WNOHANG)
}

/// Waits for a process the test does not own to be gone (absent, or a zombie of someone else).
func waitGone(_ pid: pid_t, _ timeout: Double = 10, _ what: String = "") throws {
    try waitUntil(timeout, "pid \(pid) to be gone \(what)") {
        reapIfOurs(pid)
        return !isAlive(pid)
    }
}


// MARK: HTTP over a Unix socket

struct ClientError: Error, CustomStringConvertible, Equatable {
    let stage: String
    let errno: Int32
    var description: String { "\(stage): \(errno == 0 ? "unexpected answer" : String(cString: strerror(errno)))" }
}

/// One HTTP/1.0 GET over the Unix socket at `path`: connect, write, read until EOF.
/// Returns the status code and the body (TestChild answers with its pid).
func httpGet(_ path: String, timeoutSeconds: Int = 5) -> Result<(status: Int, body: String), ClientError> {
    let raw: Int32
    do { raw = try UnixSocket.connect(path: path).release() } catch let e as SyscallError {
        return .failure(ClientError(stage: "connect", errno: e.errno))
    } catch { return .failure(ClientError(stage: "connect", errno: EIO)) }
    let fd = FileDescriptor(adopting: raw)
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd.raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    do { try fd.write("GET / HTTP/1.0\r\nHost: test\r\n\r\n") } catch let e as SyscallError {
        return .failure(ClientError(stage: "write", errno: e.errno))
    } catch { return .failure(ClientError(stage: "write", errno: EIO)) }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1024)
    while true {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress, $0.count) }
        if n == 0 { break }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(ClientError(stage: "read", errno: errno))
        }
        response += buf[..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), text.count >= 12, let code = Int(text.dropFirst(9).prefix(3)),
          let split = text.range(of: "\r\n\r\n") else {
        return .failure(ClientError(stage: "response \(text.debugDescription)", errno: 0))
    }
    return .success((code, String(text[split.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)))
}

/// The pid that answered a GET, or a failure the test reports.
func answeringPid(_ path: String) throws -> pid_t {
    switch httpGet(path) {
    case .success(let r):
        guard r.status == 200, let pid = pid_t(r.body) else { throw TestFailure("GET \(path): \(r.status) \(r.body)") }
        return pid
    case .failure(let e): throw TestFailure("GET \(path): \(e)")
    }
}

// MARK: the status file

struct StatusDocument: Decodable {
    struct Gen: Decodable {
        let generation: Int
        let pid: pid_t
        let state: String
        let serving: Bool
        let age_ms: Int
    }
    struct Reload: Decodable {
        let generation: Int
        let outcome: String
        let reason: String
        let duration_ms: Int
    }
    let pid: pid_t
    let stopping: Bool
    let current_generation: Int?
    let generations: [Gen]
    let last_reload: Reload?

    var serving: Gen? { generations.first { $0.serving } }
    /// Exactly one generation left, ready and serving: nothing reloading, nothing draining.
    var settled: Bool { generations.count == 1 && generations[0].serving && generations[0].state == "ready" }
}

// MARK: a hupwatch under test

/// A hupwatch process started by the test: stdout and stderr go to files in the test's folder.
final class Hupwatch {
    let pid: pid_t
    let dir: TempDir
    let statusPath: String
    let stderrPath: String
    let stdoutPath: String
    private(set) var rawProcessEnd: Int32?
    /// Generations the test watches outlive hupwatch (it SIGKILLed hupwatch): `kill()` stops them too.
    var outliving: [pid_t] = []

    /// Starts `hupwatch --status-file DIR/status.json ARGS`.
    /// `environment` is added to the test's own; `launcher` runs first and must exec its arguments (same pid);
    /// `fd3` is handed over as fd 3 (socket activation); `strayFD` is a /dev/null hupwatch inherits without
    /// CLOEXEC, as from a careless parent.
    init(_ args: [String], dir: TempDir, statusFile: Bool = true, name: String = "hupwatch",
         environment: [String] = [], launcher: [String] = [], fd3: Int32? = nil, strayFD: Int32? = nil) throws {
        self.dir = dir
        statusPath = dir.file("\(name).status.json")
        stderrPath = dir.file("\(name).stderr")
        stdoutPath = dir.file("\(name).stdout")
        let all = launcher + [try binary("hupwatch")] + (statusFile ? ["--status-file", statusPath] : []) + args
        pid = try launch(all, stdout: stdoutPath, stderr: stderrPath, environment: environment, fd3: fd3, strayFD: strayFD)
    }

    func signal(_ sig: Int32) {
        guard rawProcessEnd == nil else { return }
        Glibc.kill(pid, sig)
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    func status() -> StatusDocument? {
        guard let data = FileManager.default.contents(atPath: statusPath),
              let doc = try? JSONDecoder().decode(StatusDocument.self, from: data) else { return nil }
        return doc
    }

    /// Waits for a status document satisfying `condition` and returns it.
    @discardableResult
    func waitStatus(_ timeout: Double = 10, _ what: String, _ condition: (StatusDocument) -> Bool) throws -> StatusDocument {
        var last: StatusDocument? = nil
        try waitUntil(timeout, "\(what); last status: \(lastStatusText(last)); hupwatch stderr:\n\(stderr)") {
            try checkRunning()
            last = status()
            return last.map(condition) ?? false
        }
        return last!
    }

    private func lastStatusText(_ s: StatusDocument?) -> String {
        (try? String(contentsOfFile: statusPath, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? "none"
    }

    /// Waits until generation `n` alone serves, ready, and returns its pid.
    @discardableResult
    func waitServing(_ n: Int, timeout: Double = 10) throws -> pid_t {
        try waitStatus(timeout, "generation \(n) alone serving") { $0.current_generation == n && $0.settled }.serving!.pid
    }

    /// Throws if hupwatch exited when it should be running.
    func checkRunning() throws {
        if let code = poll() { throw TestFailure("hupwatch exited with \(code); stderr:\n\(stderr)") }
    }

    /// Reaps hupwatch if it has exited: its shell-style exit code, nil while it runs.
    @discardableResult
    func poll() -> Int32? {
        if rawProcessEnd == nil {
            var st: Int32 = 0
            if waitpid(pid, &st, WNOHANG) == pid { rawProcessEnd = st }
        }
        return rawProcessEnd.map { ProcessEnd(waitStatus: $0).shellCode }
    }

    var isRunning: Bool { poll() == nil }

    /// Waits for hupwatch to exit and returns its shell-style exit code.
    func waitExit(_ timeout: Double = 10) throws -> Int32 {
        try waitUntil(timeout, "hupwatch \(pid) to exit; stderr:\n\(stderr)") { poll() != nil }
        return poll()!
    }

    /// Lines of stderr containing `text`.
    func lines(containing text: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.contains(text) }
    }

    func waitLog(_ text: String, _ timeout: Double = 10) throws {
        try waitUntil(timeout, "hupwatch's stderr to contain \"\(text)\"; it is:\n\(stderr)") { stderr.contains(text) }
    }

    /// Failure-path cleanup: if hupwatch still runs, SIGKILL it and the generations its status file names.
    /// (Once hupwatch has exited on its own it has already stopped them: no stale pid is ever signalled.)
    func kill() {
        var pids = outliving.filter(isAlive)
        if poll() == nil {
            pids += status()?.generations.map(\.pid) ?? []
            Glibc.kill(pid, SIGKILL)
            _ = try? waitExit(10)
        }
        for p in pids where isAlive(p) { Glibc.kill(p, SIGKILL) }
        for p in pids { try? waitGone(p, 5) }
    }
}

/// posix_spawn with stdin from /dev/null, stdout and stderr to files, default signal dispositions,
/// an empty signal mask and no fds but 0-2 (so nothing another test holds leaks into it).
func launch(_ argv: [String], stdout: String, stderr: String, environment extra: [String] = [], fd3: Int32? = nil,
            strayFD: Int32? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    if let fd3 { posix_spawn_file_actions_adddup2(&actions, fd3, 3) }
    if let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
        _ = unsafeBitCast(sym, to: CloseFrom.self)(&actions, fd3 == nil ? 3 : 4)
    }
    if let strayFD { posix_spawn_file_actions_addopen(&actions, strayFD, "/dev/null", O_RDONLY, 0) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    // Every signal, glibc's internal ones included (sigfillset leaves those out).
    var all = sigset_t()
    withUnsafeMutableBytes(of: &all) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xff) }
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let env = removing(["NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"], from: environmentSnapshot()) + extra
    let cArgv = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup($0) } + [nil]
    defer {
        cArgv.forEach { free($0) }
        cEnv.forEach { free($0) }
    }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, argv[0], &actions, &attr, cArgv, cEnv)
    guard r == 0 else { throw TestFailure("posix_spawn(\(argv[0])): \(String(cString: strerror(r)))") }
    return pid
}

/// Runs hupwatch to completion (for command lines it rejects): exit code, stdout, stderr.
func runHupwatch(_ args: [String], dir: TempDir, timeout: Double = 10) throws -> (code: Int32, stdout: String, stderr: String) {
    let hw = try Hupwatch(args, dir: dir, statusFile: false, name: "run-\(UInt32.random(in: 0...UInt32.max))")
    defer { hw.kill() }
    let code = try hw.waitExit(timeout)
    return (code, hw.stdout, hw.stderr)
}
