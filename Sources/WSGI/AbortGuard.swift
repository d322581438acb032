import Glibc
import Posix
import SWSGI

/// While the master imports the app, an abort() (os.abort(), a failed assertion in an extension) must
/// not look like swsgi crashing: the Swift runtime's crash report would name swsgi's frames. A SIGABRT
/// handler, installed only around the import, writes one line, removes the temporary socket name and
/// ends the process with `status`; afterwards the previous disposition is back. (SIGKILL cannot be
/// caught: an app that kills itself that way ends the master with 137 and no line.)
enum AbortGuard {
    /// Installs the handler (status > 0, `line` written on SIGABRT, cut to 511 bytes) or puts the previous
    /// disposition back (0). Throws with the call named when sigaction fails.
    static func set(_ status: Int32, _ line: String?) throws {
        let state = abortGuardState
        if status > 0, let line {
            state.pointee.words.keep(line)
            state.pointee.words.status = status
            guard !state.pointee.installed else { return }
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = abortGuardHandler
            sa.sa_flags = 0
            sigemptyset(&sa.sa_mask)
            guard sigaction(SIGABRT, &sa, &state.pointee.previous) == 0 else {
                throw SWSGIError("sigaction(SIGABRT): \(errnoText(errno))")
            }
            state.pointee.installed = true
        } else if state.pointee.installed {
            guard sigaction(SIGABRT, &state.pointee.previous, nil) == 0 else {
                throw SWSGIError("sigaction(SIGABRT): \(errnoText(errno))")
            }
            state.pointee.installed = false
            state.pointee.words.status = 0
        }
    }
}

private struct AbortGuardState {
    var installed = false
    var previous = sigaction()
    var words = LastWords()
}

/// Allocated once, never freed: the handler reads it without allocating. `nonisolated(unsafe)` because a
/// pointer is not Sendable; the `let` never changes and only the thread that loads the app writes the pointee.
private nonisolated(unsafe) let abortGuardState: UnsafeMutablePointer<AbortGuardState> = {
    let p = UnsafeMutablePointer<AbortGuardState>.allocate(capacity: 1)
    p.initialize(to: AbortGuardState())
    return p
}()

/// Async-signal-safe: write(2), unlink(2), _exit(2) only.
private let abortGuardHandler: @convention(c) (Int32) -> Void = { _ in
    let state = abortGuardState
    state.pointee.words.sayAndExit(state.pointee.words.status > 0 ? state.pointee.words.status : 134)
}
