import Glibc
import Posix

/// While the master imports a Python app its signals are blocked (a thread the import starts must never take
/// them), so a TERM waited for the import's end: an import that hangs (a database that never answers) kept swsgi
/// from stopping until SIGKILL, and a supervisor's stop with it. A thread waits for TERM, INT and QUIT meanwhile:
/// on one, it removes the temporary socket names and ends the process, as a stop before serving does (status 0).
/// HUP stays pending for the start-up's own check.
/// (Best effort: a thread that cannot be made, under a --limit-as too low for it, leaves the stop to the check after
/// the import, as before.)
final class ImportStopWatch {
    private let thread: pthread_t

    /// Called with the master's signals blocked (the thread inherits the mask: sigwait needs them blocked).
    init?() {
        var t = pthread_t()
        // A small stack: it waits, logs a line and exits.
        var attr = pthread_attr_t()
        guard pthread_attr_init(&attr) == 0 else { return nil }
        defer { pthread_attr_destroy(&attr) }
        _ = pthread_attr_setstacksize(&attr, 256 << 10)
        // The thread starts with SIGUSR2 (its wake-up) blocked: unblocked for a moment, a wake-up sent before it
        // runs would take the default action and end the process.
        var wake = SignalSet([SIGUSR2]).raw, previous = sigset_t()
        guard pthread_sigmask(SIG_BLOCK, &wake, &previous) == 0 else { return nil }
        defer { _ = pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let r = pthread_create(&t, &attr, { _ in
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
        guard r == 0 else { return nil }
        thread = t
    }

    /// The import is over: the thread ends (a signal arriving from now waits in the master's signalfd).
    func finish() {
        _ = pthread_kill(thread, SIGUSR2)
        _ = pthread_join(thread, nil)
    }
}
