import CGlibcShim
import Glibc

/// How a process ended, as waitpid reported it.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus s: Int32) {
        self = shim_WIFSIGNALED(s) != 0 ? .signaled(shim_WTERMSIG(s)) : .exited(shim_WEXITSTATUS(s))
    }

    /// The shell's convention: the exit code, or 128 + the signal number.
    public var shellCode: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "killed by \(SignalName.name(s))"
        }
    }
}

/// Reaps every child that has ended (waitpid(-1, WNOHANG) until 0 or ECHILD).
public func reapChildren() throws -> [(pid: pid_t, status: ExitStatus)] {
    var out: [(pid_t, ExitStatus)] = []
    while true {
        var st: Int32 = 0
        let pid = waitpid(-1, &st, WNOHANG)
        if pid > 0 { out.append((pid, ExitStatus(waitStatus: st))); continue }
        if pid == 0 { return out }
        if errno == EINTR { continue }
        if errno == ECHILD { return out }
        throw SyscallError("waitpid")
    }
}

/// Makes this process the reaper of orphaned descendants, so daemonizing servers stay under us.
public func becomeChildSubreaper() throws {
    try syscall("prctl(PR_SET_CHILD_SUBREAPER)") { shim_set_child_subreaper() }
}

/// Sets the name `ps -o comm` and `top` show (15 bytes at most).
public func setProcessName(_ name: String) {
    _ = shim_set_name(name)
}
