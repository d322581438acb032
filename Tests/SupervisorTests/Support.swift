import Foundation
import Glibc
import Testing

/// Every supervisor test hangs under this one suite: they start real supervisors and processes, one at a time.
@Suite(.serialized) struct SupervisorExamples {}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: where things are

/// The package root, found from this file's path (Tests/SupervisorTests/Support.swift).
let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

let examplesDir = packageRoot + "/supervisor-examples"

/// The folder of the test bundle (CommandLine.arguments[0]), where `swift build` puts hupwatch, swsgi and TestChild.
let binDirectory: String = {
    let arg0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    if access(arg0 + "/hupwatch", X_OK) == 0 { return arg0 }
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { return arg0 }
    let exe = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return URL(fileURLWithPath: exe).deletingLastPathComponent().path
}()

func builtBinary(_ name: String) throws -> String {
    let path = binDirectory + "/" + name
    guard access(path, X_OK) == 0 else {
        throw Failure("\(name) not found next to the test bundle at \(path): run `swift build` first")
    }
    return path
}

/// A tool from a system package, found on PATH (plus the sbin folders). Fails naming the install command.
func tool(_ name: String, install: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    let dirs: [String] = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"]
    for dir in dirs {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 { return p }
    }
    throw Failure("\(name) is not installed: run `\(install)` (.ci/run installs it on a clean machine)")
}

/// A tool installed by pip: next to python3's real interpreter (past a pyenv shim), else on PATH.
func pythonTool(_ name: String) async throws -> String {
    let install = "pip install supervisor gunicorn"
    if let python = try? tool("python3", install: "apt-get install -y python3") {
        let script = "import os, sys; print(os.path.join(os.path.dirname(sys.executable), '\(name)'))"
        if let r = try? await run([python, "-c", script], timeout: 30), r.status == 0 {
            let p = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            if access(p, X_OK) == 0 { return p }
        }
    }
    return try tool(name, install: install)
}

// MARK: a private temp folder per test

final class TempDir: @unchecked Sendable {
    let path: String

    init() throws {
        sweepLeftoversOfDeadRuns()
        var template = Array("/tmp/hwsup.XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Failure("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: p)
        chmod(path, 0o755)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func read(_ name: String) -> String { (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? "" }

    func write(_ name: String, _ text: String, executable: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: file(name)).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
        chmod(file(name), executable ? 0o755 : 0o644)
    }

    func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: file(name), withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Every pid of this test ever found in /proc. Another test in this process may have made it a
    /// child subreaper: orphans of our supervisors (runsv after runsvdir exits) then end as our
    /// zombies, so tearDown reaps these pids, each by its own number.
    private let lock = NSLock()
    private var seenPids: Set<pid_t> = []
    func seen(_ pids: [pid_t]) { lock.withLock { seenPids.formUnion(pids) } }
    func reapSeen() {
        for pid in lock.withLock({ seenPids }) {
            var st: Int32 = 0
            _ = waitpid(pid, &st, WNOHANG)
        }
    }
}

/// An example file with its real-world paths replaced by the test's: the built binaries, the temp folder.
func example(_ relative: String, _ substitutions: [(String, String)]) throws -> String {
    var text = try String(contentsOfFile: examplesDir + "/" + relative, encoding: .utf8)
    for (from, to) in substitutions { text = text.replacingOccurrences(of: from, with: to) }
    return text
}

/// The substitutions every swsgi example needs.
func standardSubstitutions(_ dir: TempDir) throws -> [(String, String)] {
    [("/usr/local/bin/hupwatch", try builtBinary("hupwatch")), ("/usr/local/bin/swsgi", try builtBinary("swsgi")),
     ("/run/app", dir.path), ("/var/log/app", dir.file("log"))]
}

// MARK: waiting

/// Polls `condition` every 20 ms until it holds; fails after `timeout` seconds, naming what it waited for.
func waitFor(_ what: @autoclosure () -> String, timeout: Double = 15, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        if Date() >= deadline { throw Failure("timed out after \(timeout) s waiting for \(what())") }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
}

// MARK: processes

/// The environment children get: ours, minus anything a supervisor of the test runner may have set,
/// plus a marker naming the test's folder so every process of the test can be found in /proc.
func childEnvironment(marker: String?, extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    for k in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SVDIR", "SVWAIT"] { env[k] = nil }
    if let marker {
        env["HWSUP_TEST_DIR"] = marker
        env["HWSUP_TEST_PID"] = String(getpid())
    }
    for (k, v) in extra { env[k] = v }
    return env
}

/// A process the test started with posix_spawn: its own process group, a clean signal mask and
/// dispositions, stdin from /dev/null, stdout+stderr to a file, no fd of ours but an optional fd 3.
final class Child: @unchecked Sendable {
    let pid: pid_t
    let argv: [String]
    let outputPath: String
    private(set) var rawStatus: Int32?

    init(_ argv: [String], output: String, environment: [String: String], fd3: Int32? = nil) throws {
        self.argv = argv
        outputPath = output
        let out = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw Failure("open \(output): \(String(cString: strerror(errno)))") }
        defer { close(out) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out, 1)
        posix_spawn_file_actions_adddup2(&actions, out, 2)
        var high: Int32 = -1
        if let fd3 {
            // Via a high copy, so dup2 onto 3 never meets fd 3 itself (dup2(3, 3) keeps FD_CLOEXEC).
            high = fcntl(fd3, F_DUPFD_CLOEXEC, 200)
            guard high >= 0 else { throw Failure("fcntl(F_DUPFD): \(String(cString: strerror(errno)))") }
            posix_spawn_file_actions_adddup2(&actions, high, 3)
        }
        defer { if high >= 0 { close(high) } }
        // Other tests run in this process: none of their fds may leak into our supervisors.
        guard let closeFrom = addCloseFrom else { throw Failure("posix_spawn_file_actions_addclosefrom_np missing (glibc < 2.34)") }
        _ = closeFrom(&actions, fd3 != nil ? 4 : 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgv, cEnv)
        guard rc == 0 else { throw Failure("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Reaps the process if it has ended; true once it has.
    @discardableResult
    func poll() -> Bool {
        if rawStatus != nil { return true }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { rawStatus = st; return true }
        if r < 0 && errno == ECHILD { rawStatus = -1; return true }  // reaped elsewhere: status unknown
        return false
    }

    var running: Bool { !poll() }

    /// The exit code, or 128+N after a death by signal N (as a shell shows it); nil while running.
    var exitCode: Int32? {
        guard poll(), let st = rawStatus else { return nil }
        if st == -1 { return -1 }
        let sig = st & 0x7f
        return sig == 0 ? (st >> 8) & 0xff : 128 + sig
    }

    func signal(_ sig: Int32) { if !poll() { kill(pid, sig) } }

    func wait(timeout: Double, _ what: String) async throws -> Int32 {
        try await waitFor("\(what) (pid \(pid)) to exit", timeout: timeout) { poll() }
        return exitCode ?? -1
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
}

/// glibc >= 2.34 has it; Swift's Glibc module does not show it, so it is looked up at run time.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = {
    guard let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(sym, to: AddCloseFrom.self)
}()

struct CommandResult {
    let status: Int32
    let output: String
}

private let commandCounter = Counter()

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}

/// Runs a short command to its end (stdout and stderr together) and returns its status and output.
func run(_ argv: [String], environment: [String: String]? = nil, timeout: Double = 60) async throws -> CommandResult {
    let out = "/tmp/.hwsup-cmd-\(getpid())-\(commandCounter.next()).out"
    defer { unlink(out) }
    let child = try Child(argv, output: out, environment: environment ?? childEnvironment(marker: nil))
    do {
        let status = try await child.wait(timeout: timeout, argv.joined(separator: " "))
        return CommandResult(status: status, output: child.output)
    } catch {
        kill(child.pid, SIGKILL)
        _ = child.poll()
        throw error
    }
}

/// Runs a command that must succeed; returns its output.
@discardableResult
func check(_ argv: [String], environment: [String: String]? = nil, timeout: Double = 60) async throws -> String {
    let r = try await run(argv, environment: environment, timeout: timeout)
    guard r.status == 0 else {
        throw Failure("`\(argv.joined(separator: " "))` exited \(r.status): \(r.output)")
    }
    return r.output
}

// MARK: /proc

func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return n == 0 ? String(decoding: out, as: UTF8.self) : nil }
        out += buf[..<n]
    }
}

struct ProcEntry: CustomStringConvertible {
    let pid: pid_t
    let ppid: pid_t
    let state: String
    let comm: String
    let cmdline: String
    var description: String { "\(pid) [\(comm), \(state), ppid \(ppid)] \(cmdline)" }
}

func procEntry(_ pid: pid_t) -> ProcEntry? {
    guard let stat = readProcFile("/proc/\(pid)/stat"), let open = stat.firstIndex(of: "("),
          let close = stat.lastIndex(of: ")") else { return nil }
    let comm = String(stat[stat.index(after: open)..<close])
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 2 else { return nil }
    let cmd = (readProcFile("/proc/\(pid)/cmdline") ?? "").replacingOccurrences(of: "\0", with: " ")
    return ProcEntry(pid: pid, ppid: pid_t(fields[1]) ?? 0, state: String(fields[0]), comm: comm, cmdline: cmd)
}

func allPids() -> [pid_t] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(pid_t.init).sorted()
}

/// Live (not zombie) processes of this test: the test's folder in their command line or their
/// environment (every process the test's supervisors start inherits HWSUP_TEST_DIR).
func markedProcesses(_ dir: TempDir) -> [ProcEntry] {
    let me = getpid()
    let found = allPids().compactMap { pid -> ProcEntry? in
        guard pid != me, let e = procEntry(pid), e.state != "Z", e.state != "X" else { return nil }
        if e.cmdline.contains(dir.path) { return e }
        if let env = readProcFile("/proc/\(pid)/environ"), env.contains("HWSUP_TEST_DIR=\(dir.path)\0") { return e }
        return nil
    }
    dir.seen(found.map(\.pid))
    return found
}

func isAlive(_ pid: pid_t) -> Bool {
    guard let e = procEntry(pid) else { return false }
    return e.state != "Z" && e.state != "X"
}

/// A test process that died (killed, crashed) before its tearDown leaves its supervisors running.
/// Their processes carry HWSUP_TEST_DIR and HWSUP_TEST_PID: those whose test process is gone are
/// SIGKILLed and their folders removed. Nothing without both markers is touched.
func sweepLeftoversOfDeadRuns() {
    let me = getpid()
    var deadDirs: Set<String> = []
    for pid in allPids() where pid != me {
        guard let env = readProcFile("/proc/\(pid)/environ") else { continue }
        let vars = env.split(separator: "\0")
        guard let dir = vars.first(where: { $0.hasPrefix("HWSUP_TEST_DIR=/tmp/hwsup.") })?.dropFirst("HWSUP_TEST_DIR=".count),
              let owner = vars.first(where: { $0.hasPrefix("HWSUP_TEST_PID=") }).flatMap({ pid_t($0.dropFirst("HWSUP_TEST_PID=".count)) }),
              owner != me else { continue }
        let ownerAlive = procEntry(owner).map { $0.state != "Z" && $0.cmdline.contains("PackageTests") } ?? false
        if ownerAlive { continue }
        kill(pid, SIGKILL)
        deadDirs.insert(String(dir))
    }
    for dir in deadDirs { try? FileManager.default.removeItem(atPath: dir) }
}

/// Last resort at the end of every test: SIGKILL whatever of this test is still alive.
/// Only processes carrying the test's folder path are touched.
@discardableResult
func killMarked(_ dir: TempDir) -> [ProcEntry] {
    let left = markedProcesses(dir)
    for p in left { kill(p.pid, SIGKILL) }
    return left
}

/// Stops every child and every marked process, then removes the folder. Called on every path.
func tearDown(_ dir: TempDir, children: [Child?]) async {
    for c in children.compactMap({ $0 }) where c.running { c.signal(SIGKILL) }
    killMarked(dir)
    try? await waitFor("test processes to go", timeout: 10) {
        for c in children.compactMap({ $0 }) { c.poll() }
        return markedProcesses(dir).isEmpty
    }
    for c in children.compactMap({ $0 }) { c.poll() }
    dir.reapSeen()
    dir.remove()
}

/// Asserts no process of the service (hupwatch, a generation, a worker) is left: whatever of the
/// test is still alive must be supervisor plumbing (`allowed` command names).
func expectNoServiceLeft(_ dir: TempDir, allowed: Set<String>, _ what: String) async throws {
    var left: [ProcEntry] = []
    do {
        try await waitFor("no process of the service to be left after \(what)", timeout: 10) {
            left = markedProcesses(dir).filter { !allowed.contains($0.comm) }
            return left.isEmpty
        }
    } catch {
        Issue.record("processes of the service left after \(what): \(left)")
        throw error
    }
}

/// The leftover check finds processes by the test's marker: make sure it sees the running service
/// (hupwatch and the server's master and workers, whose titles no longer name the folder).
func expectServiceVisible(_ dir: TempDir, server: String) {
    let seen = markedProcesses(dir)
    #expect(seen.contains { $0.comm == "hupwatch" }, "hupwatch not found by its marker: \(seen)")
    #expect(seen.filter { $0.comm.hasPrefix(server) }.count >= 3, "\(server) master and workers not found by their marker: \(seen)")
}

// MARK: HTTP over a Unix socket

/// One HTTP/1.0 GET: connect, send, read to EOF. nil when it worked, else what went wrong.
func httpGet(_ path: String, timeoutSeconds: Int = 5) -> String? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return "path too long" }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard r == 0 else { return "connect: \(String(cString: strerror(errno)))" }
    let request = Array("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    guard sent == request.count else { return "send: \(String(cString: strerror(errno)))" }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 2048)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { break }
        if n < 0 {
            if errno == EINTR { continue }
            return "recv: \(String(cString: strerror(errno))) after \(response.count) bytes"
        }
        response += buf[..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.0 200") || text.hasPrefix("HTTP/1.1 200") else {
        return "answer: \(text.prefix(80).debugDescription)"
    }
    return nil
}

/// A few clients sending GETs back to back over the Unix socket, each on a thread of its own,
/// counting answers and failures until stopped.
final class LoadClient: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var ok = 0
    private var failed = 0
    private var failures: [String] = []
    private var stopRequested = false
    private var running = 0

    init(path: String, concurrency: Int = 3) {
        self.path = path
        running = concurrency
        for _ in 0..<concurrency {
            let t = Thread { [self] in loop() }
            t.start()
        }
    }

    private func loop() {
        while !(lock.withLock { stopRequested }) {
            let error = httpGet(path)
            lock.withLock {
                if let error {
                    failed += 1
                    if failures.count < 10 { failures.append(error) }
                } else {
                    ok += 1
                }
            }
            usleep(1000)  // keep two shared cores usable by the servers and supervisors
        }
        lock.withLock { running -= 1 }
    }

    var succeeded: Int { lock.withLock { ok } }
    var failedCount: Int { lock.withLock { failed } }
    var completed: Int { lock.withLock { ok + failed } }
    var failureSamples: [String] { lock.withLock { failures } }

    /// Waits until `more` requests beyond the count now have been answered.
    func waitForMore(_ more: Int, timeout: Double = 20) async throws {
        let target = succeeded + more
        try await waitFor("\(more) more answered requests (now \(succeeded), failed \(failedCount): \(failureSamples))",
                          timeout: timeout) { succeeded >= target }
    }

    func stop() async {
        lock.withLock { stopRequested = true }
        try? await waitFor("the client threads to end", timeout: 15) { lock.withLock { running == 0 } }
    }
}

// MARK: the reload cycle every test runs

/// Log lines as hupwatch writes them, for waiting on a reload's end.
func reloadDone(_ log: String, generation n: Int) -> Bool {
    log.contains("generation \(n) is ready") && log.contains("generation \(n - 1) exited")
}

struct LoadResult: CustomStringConvertible {
    let ok: Int
    let failed: Int
    /// Requests completed between each reload command and the old generation's exit, summed.
    let duringReloads: Int
    var description: String { "\(ok + failed) requests (\(duringReloads) during the 3 reloads), \(failed) failed" }
}

/// Continuous requests during three reloads sent through `reload` (the supervisor's own command).
/// Checks after each reload that the supervisor still shows the same pid for the service and that
/// requests went on being answered.
func reloadThreeTimesUnderLoad(socket: String, log: () -> String, supervisorPid: () async throws -> pid_t,
                               reload: () async throws -> Void) async throws -> LoadResult {
    let pid0 = try await supervisorPid()
    let client = LoadClient(path: socket)
    var during = 0
    do {
        try await client.waitForMore(100)
        for n in 2...4 {
            let before = client.completed
            try await reload()
            try await waitFor("reload \(n - 1): generation \(n) ready and generation \(n - 1) gone; log:\n\(log())", timeout: 30) {
                reloadDone(log(), generation: n)
            }
            during += client.completed - before
            try await client.waitForMore(100)
            let pid = try await supervisorPid()
            #expect(pid == pid0, "the supervisor's pid for the service changed at reload \(n - 1): \(pid0) -> \(pid)")
        }
    } catch {
        await client.stop()
        throw error
    }
    await client.stop()
    let (ok, failed) = (client.succeeded, client.failedCount)
    #expect(failed == 0, "failed requests during reloads: \(failed) of \(ok + failed): \(client.failureSamples)")
    #expect(ok >= 400)
    return LoadResult(ok: ok, failed: failed, duringReloads: during)
}

/// Attaches a log to a failing test, when there is one (not when a tool was missing before any start).
func recordLog(_ title: String, _ text: String?) {
    guard let text, !text.isEmpty else { return }
    Issue.record("\(title):\n\(text.suffix(20_000))")
}

/// Prints a figure for the report.
func report(_ line: String) {
    let text = "[SupervisorTests] \(line)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
