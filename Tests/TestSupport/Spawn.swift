import Foundation
import Glibc

// Child processes a test starts: one posix_spawn recipe (stdin from /dev/null, output to files, default
// signal dispositions, an empty mask, no fd of the test process but an optional fd 3), reaped by pid only.
// A test never signals a pid it did not start.

/// The environment children get: the test's own, minus what a supervisor of the test runner (systemd,
/// runit, a CI's swsgi) may have set and would change the program's behaviour, plus `extra`. An activated
/// virtualenv's VIRTUAL_ENV goes too: swsgi would take that Python over the one a test puts on PATH.
public func testEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("SWSGI_") && !key.hasPrefix("LISTEN_") && !key.hasPrefix("HWSUP_TEST_")
            && !["NOTIFY_SOCKET", "SVDIR", "SVWAIT", "VIRTUAL_ENV"].contains(key)
    }
    for (k, v) in extra { env[k] = v }
    return env
}

/// The swsgi tests' name for `testEnvironment`.
public func cleanEnvironment(_ extra: [String: String] = [:]) -> [String: String] { testEnvironment(extra) }

/// `testEnvironment` plus a marker naming the test's folder, so every process of the test (and of the
/// supervisors it starts) can be found in /proc: see `markedProcesses`.
public func childEnvironment(marker: String?, extra: [String: String] = [:]) -> [String: String] {
    var env = testEnvironment(extra)
    if let marker {
        env["HWSUP_TEST_DIR"] = marker
        env["HWSUP_TEST_PID"] = String(getpid())
    }
    return env
}

/// glibc >= 2.34 has it; Swift's Glibc module does not show it, so it is looked up at run time.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = {
    guard let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(sym, to: AddCloseFrom.self)
}()

/// posix_spawn of `argv` (argv[0] is the program's path) with stdin from /dev/null, stdout appended to
/// `stdout`, stderr to `stderr` (nil: the same file), default dispositions for every signal and an empty
/// mask. No fd of the test process leaks in but `fd3` (handed over as fd 3) and `strayFD` (a /dev/null
/// opened at that number without CLOEXEC, as from a careless parent). `newProcessGroup`: the child leads a
/// process group of its own.
public func spawnChild(_ argv: [String], environment: [String: String], stdout: String, stderr: String? = nil,
                       fd3: Int32? = nil, strayFD: Int32? = nil, newProcessGroup: Bool = false) throws -> pid_t {
    guard let program = argv.first else { throw TestFailure("spawnChild: empty argv") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    if let stderr, stderr != stdout {
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    } else {
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    var high: Int32 = -1
    if let fd3 {
        // Via a high copy, so dup2 onto 3 never meets fd 3 itself (dup2(3, 3) keeps FD_CLOEXEC).
        high = fcntl(fd3, F_DUPFD_CLOEXEC, 200)
        guard high >= 0 else { throw TestFailure("fcntl(\(fd3), F_DUPFD_CLOEXEC): \(errnoText(errno))") }
        posix_spawn_file_actions_adddup2(&actions, high, 3)
    }
    defer { if high >= 0 { close(high) } }
    // Other tests run in this process at the same time: none of their fds may leak into this child.
    guard let closeFrom = addCloseFrom else { throw TestFailure("posix_spawn_file_actions_addclosefrom_np missing (glibc < 2.34)") }
    _ = closeFrom(&actions, fd3 != nil ? 4 : 3)
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
    var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
    if newProcessGroup {
        posix_spawnattr_setpgroup(&attr, 0)
        flags |= POSIX_SPAWN_SETPGROUP
    }
    posix_spawnattr_setflags(&attr, Int16(flags))

    let cArgv = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        cArgv.forEach { free($0) }
        cEnv.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, program, &actions, &attr, cArgv, cEnv)
    guard rc == 0 else { throw TestFailure("posix_spawn(\(program)): \(errnoText(rc))") }
    return pid
}

/// `spawnChild` with the hupwatch tests' arguments: `environment` ("K=V") added to `testEnvironment()`.
public func launch(_ argv: [String], stdout: String, stderr: String, environment extra: [String] = [], fd3: Int32? = nil,
                   strayFD: Int32? = nil) throws -> pid_t {
    var added: [String: String] = [:]
    for entry in extra {
        guard let eq = entry.firstIndex(of: "=") else { throw TestFailure("launch: environment entry without '=': \(entry)") }
        added[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
    }
    return try spawnChild(argv, environment: testEnvironment(added), stdout: stdout, stderr: stderr, fd3: fd3, strayFD: strayFD)
}

/// `spawnChild` with the swsgi tests' arguments: the whole environment given, stdout and stderr to one file.
public func spawnProcess(_ path: String, _ arguments: [String], environment: [String: String], outputPath: String,
                         fd3: Int32? = nil) throws -> pid_t {
    try spawnChild([path] + arguments, environment: environment, stdout: outputPath, fd3: fd3)
}

/// A raw wait status as a shell shows it: the exit code, or 128+N after a death by signal N.
public func shellCode(waitStatus st: Int32) -> Int32 {
    let sig = st & 0x7f
    return sig == 0 ? (st >> 8) & 0xff : 128 + sig
}

/// A process the test started: reaped by its pid only, signalled only while it has not been reaped.
public final class Child: @unchecked Sendable {
    public let pid: pid_t
    public let argv: [String]
    public let outputPath: String
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `argv` with stdout and stderr appended to `output`; by default in a process group of its own
    /// (so a supervisor under test and everything it starts can be told apart from the test runner).
    public init(_ argv: [String], output: String, environment: [String: String], fd3: Int32? = nil,
                newProcessGroup: Bool = true) throws {
        self.argv = argv
        outputPath = output
        pid = try spawnChild(argv, environment: environment, stdout: output, fd3: fd3, newProcessGroup: newProcessGroup)
    }

    /// Adopts a pid the test spawned some other way (it must be the test's own child).
    public init(adopting pid: pid_t, argv: [String] = [], output: String = "/dev/null") {
        self.pid = pid
        self.argv = argv
        outputPath = output
    }

    /// The raw wait status once reaped (-1: reaped elsewhere, status unknown), nil while it runs.
    public var rawStatus: Int32? { lock.withLock { status } }

    /// Reaps the process if it has ended; true once it has.
    @discardableResult
    public func poll() -> Bool {
        lock.withLock {
            if status != nil { return true }
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { status = st; return true }
            if r < 0 && errno == ECHILD { status = -1; return true }
            return false
        }
    }

    public var running: Bool { !poll() }
    public var isRunning: Bool { !poll() }

    /// The exit code, or 128+N after a death by signal N (as a shell shows it); -1 if reaped elsewhere;
    /// nil while running.
    public var exitCode: Int32? {
        guard poll(), let st = rawStatus else { return nil }
        return st == -1 ? -1 : shellCode(waitStatus: st)
    }

    /// Sends `sig`, unless the process has already been reaped (its pid may belong to another by now).
    public func signal(_ sig: Int32) { if !poll() { kill(pid, sig) } }

    /// Waits (async) for the process to end; its exit code.
    public func wait(timeout: Double, _ what: String) async throws -> Int32 {
        try await waitFor("\(what) (pid \(pid)) to exit", timeout: timeout) { poll() }
        return exitCode ?? -1
    }

    /// Waits for the process to end within `timeout` seconds; its exit code, nil if it still runs.
    public func waitExit(timeout: Double) -> Int32? {
        waitUntil(timeout) { poll() } ? exitCode : nil
    }

    /// `signal` (SIGTERM by default), then SIGKILL if it lingers past `timeout`; always reaps.
    /// Returns the exit code.
    @discardableResult
    public func stop(_ sig: Int32 = SIGTERM, timeout: Double = 10) -> Int32 {
        if running {
            signal(sig)
            if let code = waitExit(timeout: timeout) { return code }
            signal(SIGKILL)
            _ = waitExit(timeout: 30)
        }
        return exitCode ?? -1
    }

    /// What the process wrote so far.
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
}

/// Reaps `pid` if it has ended and is our child. Orphans (of a SIGKILLed hupwatch) belong to init, which may
/// leave them zombies: those count as gone. The test process never becomes a subreaper: other suites'
/// orphans would then pile up as its zombies.
public func reapIfOurs(_ pid: pid_t) {
    var st: Int32 = 0
    _ = waitpid(pid, &st, WNOHANG)
}

/// Waits for a process the test does not own to be gone (absent, or a zombie of someone else).
public func waitGone(_ pid: pid_t, _ timeout: Double = 10, _ what: String = "") throws {
    try waitUntil(timeout, "pid \(pid) to be gone \(what)") {
        reapIfOurs(pid)
        return !isAlive(pid)
    }
}

/// Waits for our own child `pid` to end and returns its raw wait status.
public func reap(_ pid: pid_t, timeout: Double = 5) throws -> Int32 {
    var status: Int32 = 0
    var result: pid_t = 0
    try waitUntil(timeout, "pid \(pid) to exit") {
        result = waitpid(pid, &status, WNOHANG)
        return result != 0
    }
    guard result == pid else { throw TestFailure("waitpid(\(pid)): \(errnoText(errno))") }
    return status
}

public struct CommandResult: Sendable {
    public let status: Int32
    public let output: String
}

private let commandCounter = Counter()

/// Runs a short command to its end (stdout and stderr together) and returns its status and output.
public func run(_ argv: [String], environment: [String: String]? = nil, timeout: Double = 60) async throws -> CommandResult {
    let out = "/tmp/.hwt-cmd-\(getpid())-\(commandCounter.next()).out"
    defer { unlink(out) }
    let child = try Child(argv, output: out, environment: environment ?? testEnvironment())
    do {
        let status = try await child.wait(timeout: timeout, argv.joined(separator: " "))
        return CommandResult(status: status, output: child.output)
    } catch {
        child.signal(SIGKILL)
        _ = child.waitExit(timeout: 10)
        throw error
    }
}

/// Runs a command that must succeed; returns its output.
@discardableResult
public func check(_ argv: [String], environment: [String: String]? = nil, timeout: Double = 60) async throws -> String {
    let r = try await run(argv, environment: environment, timeout: timeout)
    guard r.status == 0 else {
        throw TestFailure("`\(argv.joined(separator: " "))` exited \(r.status): \(r.output)")
    }
    return r.output
}
