import Glibc
import Posix

/// While the master imports a Python app its signals are blocked (a thread the import starts must never take
/// them), so a TERM waited for the import's end: an import that hangs (a database that never answers) kept swsgi
/// from stopping until SIGKILL, and a supervisor's stop with it. A thread waits for TERM, INT and QUIT meanwhile:
/// on one, it removes the temporary socket names and ends the process, as a stop before serving does (status 0).
/// HUP stays pending for the start-up's own check.
struct ImportStopWatch: ~Copyable {
    private let thread: pthread_t

    /// Called with the master's signals blocked (the thread inherits the mask: sigwait needs them blocked).
    init() throws {
        var t = pthread_t()
        let r = pthread_create(&t, nil, { _ in
            var wake = SignalSet([SIGUSR2]).raw
            _ = pthread_sigmask(SIG_BLOCK, &wake, nil)
            var set = SignalSet([SIGTERM, SIGINT, SIGQUIT, SIGUSR2]).raw
            var sig: Int32 = 0
            while true {
                guard sigwait(&set, &sig) == 0 else { continue }
                if sig == SIGUSR2 { return nil }
                guard sig == SIGTERM || sig == SIGINT || sig == SIGQUIT else { continue }
                ServerLog.line("\(SignalName.name(sig)) during the app's import: stopped before serving (the import had not finished)")
                StartupCleanup.removeNow()
                _exit(ExitCode.success)
            }
        }, nil)
        if r != 0 { throw SyscallError("pthread_create", errno: r) }
        thread = t
    }

    /// The import is over: the thread ends (a signal arriving from now waits in the master's signalfd).
    consuming func finish() {
        _ = pthread_kill(thread, SIGUSR2)
        _ = pthread_join(thread, nil)
    }
}
