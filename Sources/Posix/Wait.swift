import CGlibcShim
import Glibc

extension ProcessEnd {
    public init(waitStatus s: Int32) {
        self = shim_WIFSIGNALED(s) != 0 ? .signaled(shim_WTERMSIG(s)) : .exited(shim_WEXITSTATUS(s))
    }
}

/// Reaps every child that has ended (waitpid(-1, WNOHANG) until 0 or ECHILD).
public func reapChildren() throws -> [(pid: pid_t, status: ProcessEnd)] {
    var out: [(pid_t, ProcessEnd)] = []
    while true {
        var st: Int32 = 0
        let pid = waitpid(-1, &st, WNOHANG)
        if pid > 0 { out.append((pid, ProcessEnd(waitStatus: st))); continue }
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
