import CGlibcShim
import Glibc

/// What to start and how. The child gets a clean signal mask and default dispositions, its own
/// process group, nothing but fds 0-2 (and the listener on fd 3 when given).
public struct SpawnRequest {
    public var executablePath: String
    public var argv: [String]
    public var environment: [String]
    public var workingDirectory: String?
    /// Put on fds 3, 4, ... in the child with LISTEN_FDS and LISTEN_PID set to the child's own pid
    /// (systemd socket activation). Each must be at least 3 + their count, so no dup2 clobbers another.
    public var listeners: [Int32]
    /// PR_SET_PDEATHSIG: the signal the child gets when we die, even by SIGKILL.
    public var parentDeathSignal: Int32?
    /// Put on the child's fd 1 (a pipe's write end the caller reads); nil keeps ours.
    public var standardOutput: Int32? = nil

    public init(executablePath: String, argv: [String], environment: [String], workingDirectory: String? = nil,
                listener: Int32? = nil, listeners: [Int32] = [], parentDeathSignal: Int32? = nil) {
        self.executablePath = executablePath
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.listeners = listener.map { [$0] + listeners } ?? listeners
        self.parentDeathSignal = parentDeathSignal
    }
}

/// Why a child could not exec; the child has already been reaped.
public struct SpawnError: Error, CustomStringConvertible {
    public let step: String
    public let errno: Int32
    public let context: String

    public var description: String { "\(step)(\(context)): \(errnoText(errno))" }

    /// 127 when the program is missing, 126 when it cannot be run, as a shell reports it.
    public var shellCode: Int32 { errno == ENOENT && step == "execve" ? 127 : 126 }
}

/// Where a command name resolves, the way execvp searches PATH.
public enum ExecutableLookup: Equatable {
    case found(String)
    case notFound
    case notExecutable(String)
}

public func resolveExecutable(_ name: String, searchPath: String?) -> ExecutableLookup {
    func check(_ path: String) -> ExecutableLookup? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) == S_IFDIR || access(path, X_OK) != 0 { return .notExecutable(path) }
        return .found(path)
    }
    if name.contains("/") { return check(name) ?? .notFound }
    var firstUnrunnable: String? = nil
    for dir in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
        switch check(candidate) {
        case .found(let p)?: return .found(p)
        case .notExecutable(let p)?: if firstUnrunnable == nil { firstUnrunnable = p }
        default: break
        }
    }
    return firstUnrunnable.map { .notExecutable($0) } ?? .notFound
}

/// fork + execve (the fork happens in C so the child runs only async-signal-safe code), reporting an
/// exec failure synchronously through a CLOEXEC pipe. Call only while the process is single-threaded.
public func spawn(_ r: SpawnRequest) throws -> pid_t {
    var env = r.environment
    precondition(r.listeners.allSatisfy { $0 >= 3 + Int32(r.listeners.count) }, "listeners must sit above their targets")
    if !r.listeners.isEmpty {
        // A stale count or pid never reaches the child; LISTEN_FDNAMES is the caller's to give (hupwatch names
        // the listeners), so it stays.
        env = removing(["LISTEN_PID", "LISTEN_FDS"], from: env)
        env.append("LISTEN_FDS=\(r.listeners.count)")
        // Twenty spaces the child overwrites with its own pid: LISTEN_PID must name the reader.
        env.append("LISTEN_PID=" + String(repeating: " ", count: 20))
    }
    let cArgv = r.argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup($0) } + [nil]
    let cPath = strdup(r.executablePath)
    let cDir = r.workingDirectory.map { strdup($0) } ?? nil
    defer {
        cArgv.forEach { free($0) }
        cEnv.forEach { free($0) }
        free(cPath)
        free(cDir)
    }
    let errPipe = try makePipe()
    defer { close(errPipe.read) }
    var spec = shim_spawn()
    spec.listen_count = Int32(r.listeners.count)
    spec.listen_pid_digits = !r.listeners.isEmpty ? cEnv[env.count - 1]! + 11 : nil
    spec.pdeathsig = r.parentDeathSignal ?? 0
    spec.parent_pid = getpid()
    spec.err_fd = errPipe.write
    spec.stdout_fd = r.standardOutput ?? 0
    spec.chdir = UnsafePointer(cDir)
    spec.path = UnsafePointer(cPath)
    let pid: pid_t = cArgv.withUnsafeBufferPointer { argv in
        cEnv.withUnsafeBufferPointer { envp in
            r.listeners.withUnsafeBufferPointer { fds in
                spec.argv = argv.baseAddress
                spec.envp = envp.baseAddress
                spec.listen_fds = fds.baseAddress
                return shim_fork_exec(&spec)
            }
        }
    }
    if pid < 0 { let e = errno; close(errPipe.write); throw SyscallError("fork", errno: e) }
    close(errPipe.write)   // close our copy so EOF arrives once the child has exec'd
    var record: (Int32, Int32) = (0, 0)
    var got = 0
    while got < 8 {
        let n = withUnsafeMutableBytes(of: &record) { Glibc.read(errPipe.read, $0.baseAddress! + got, 8 - got) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        got += n
    }
    guard got == 8 else { return pid }
    var st: Int32 = 0
    while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    switch record.0 {
    case 1: throw SpawnError(step: "chdir", errno: record.1, context: r.workingDirectory ?? "")
    case 2: throw SpawnError(step: "dup2", errno: record.1, context: r.standardOutput != nil ? "stdout or listeners" : "listeners onto fds 3..\(2 + r.listeners.count)")
    case 3: throw SpawnError(step: "execve", errno: record.1, context: r.executablePath)
    default: throw SpawnError(step: "child setup", errno: record.1, context: r.executablePath)
    }
}
