import Common
import Glibc
import Posix

/// An `exec` hook's command, run to completion in the master before it serves. Stopping the server
/// meanwhile (TERM, INT or QUIT) stops the command's whole process group (the child leads its own group)
/// and reaps it, and a command still running after a few seconds is logged, so start-up never hangs
/// silently. uWSGI has no hook timeout either: a slow hook is the operator's to see and stop.
enum HookCommand {
    static let stopSignals: [Int32] = [SIGTERM, SIGINT, SIGQUIT]
    static let logAfterMilliseconds: UInt64 = 5000
    /// After the stop signal, how long the command gets before SIGKILL.
    static let stopGraceMilliseconds: UInt64 = 3000

    /// Runs `body` with the stop signals and SIGCHLD read from a signalfd: blocked from before the fork, so
    /// neither a stop nor the child's end can be missed (the child gets an empty mask and default
    /// dispositions back: spawn resets them). The caller's mask comes back after.
    static func withStopSignals<T>(_ body: (borrowing SignalFD) throws -> T) throws -> T {
        var previous = sigset_t()
        var none = sigset_t()
        sigemptyset(&none)
        let r = pthread_sigmask(SIG_BLOCK, &none, &previous)
        if r != 0 { throw SyscallError("pthread_sigmask", errno: r) }
        defer { _ = pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let signals = try SignalFD(stopSignals + [SIGCHLD])
        return try body(signals)
    }

    static func run(_ command: String, label: String, environment: [String]) throws -> ProcessEnd {
        try withStopSignals { signals in try run(command, label: label, environment: environment, signals: signals) }
    }

    private static func run(_ command: String, label: String, environment: [String], signals: borrowing SignalFD) throws -> ProcessEnd {
        let pid = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["/bin/sh", "-c", command], environment: environment))
        let started = monotonicNanoseconds()
        var logged = false
        while true {
            if let end = try reap(pid) { return end }
            var timeout: Int32 = -1
            if !logged {
                let elapsed = (monotonicNanoseconds() - started) / 1_000_000
                if elapsed >= logAfterMilliseconds {
                    ServerLog.line("\(label): waiting for hook (pid \(pid), running for \(elapsed / 1000) s); SIGTERM stops it and start-up")
                    logged = true
                } else {
                    timeout = Int32(logAfterMilliseconds - elapsed)
                }
            }
            _ = try waitReadable([signals.fd.raw], timeoutMilliseconds: timeout)
            while let next = try signals.next() {
                guard stopSignals.contains(next.signal) else { continue }
                try stop(pid, signals: signals)
                throw SWSGIError("stopped by \(SignalName.name(next.signal)) while the hook ran; the hook's processes were stopped")
            }
        }
    }

    /// The command's end, nil while it runs.
    static func reap(_ pid: pid_t) throws -> ProcessEnd? {
        var st: Int32 = 0
        while true {
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { return ProcessEnd(waitStatus: st) }
            if r == 0 { return nil }
            if errno != EINTR { throw SyscallError("waitpid", context: "hook") }
        }
    }

    /// SIGTERM to the command's group, SIGKILL after the grace, then the group's stragglers; reaped.
    static func stop(_ pid: pid_t, signals: borrowing SignalFD) throws {
        _ = kill(-pid, SIGTERM)
        let deadline = monotonicNanoseconds() + stopGraceMilliseconds * 1_000_000
        while try reap(pid) == nil {
            let now = monotonicNanoseconds()
            if now >= deadline {
                _ = kill(-pid, SIGKILL)
                var st: Int32 = 0
                while waitpid(pid, &st, 0) < 0 {
                    if errno != EINTR { throw SyscallError("waitpid", context: "hook") }
                }
                break
            }
            _ = try waitReadable([signals.fd.raw], timeoutMilliseconds: Int32((deadline - now) / 1_000_000) + 1)
            while try signals.next() != nil {}
        }
        // The group outlives its leader if a member ignored SIGTERM: the leader's pid stays reserved as the
        // group's id while any member lives, so this reaches only the hook's processes.
        _ = kill(-pid, SIGKILL)
    }
}
