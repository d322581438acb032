import Glibc
import SWSGI

/// While an app is being imported, a C-level exit() (an extension, ctypes) must not end swsgi silently
/// with the app's status: an atexit handler, armed only around the import, writes one line and ends the
/// process with `status` instead. Python-level exits (os._exit, sys.exit) are refused in Python itself.
enum ExitGuard {
    /// Arms (status > 0, `line` written at such an exit, cut to 511 bytes) or disarms (0) the guard; the
    /// atexit handler is registered on first use. Returns -1 when atexit fails, as the C version did.
    @discardableResult
    static func set(_ status: Int32, _ line: String?) -> Int32 {
        // Touching the global here runs its initializer now, never in the exit handler.
        let state = exitGuardState
        if !state.pointee.registered {
            if atexit(exitGuardHandler) != 0 { return -1 }
            state.pointee.registered = true
        }
        state.pointee.words.status = 0
        if status > 0, let line { state.pointee.words.keep(line) }
        state.pointee.owner = getpid()
        state.pointee.words.status = status
        return 0
    }
}

private struct ExitGuardState {
    var registered = false
    /// The process that armed the guard: a process the app forks during its import inherits the handler,
    /// and its exit() is its own (it must neither say swsgi's line nor remove swsgi's socket name).
    var owner: pid_t = 0
    var words = LastWords()
}

/// Allocated once and never freed: the exit handler reads it without allocating. `nonisolated(unsafe)`
/// because a pointer is not Sendable; the `let` never changes and only the thread that loads the app
/// (the one exit() runs its handlers on) writes the pointee.
private nonisolated(unsafe) let exitGuardState: UnsafeMutablePointer<ExitGuardState> = {
    let p = UnsafeMutablePointer<ExitGuardState>.allocate(capacity: 1)
    p.initialize(to: ExitGuardState())
    return p
}()

/// Runs inside exit(): writes the line and ends the process with the guard's status while armed.
private let exitGuardHandler: @convention(c) () -> Void = {
    let state = exitGuardState
    let status = state.pointee.words.status
    if status <= 0 || getpid() != state.pointee.owner { return }
    state.pointee.words.sayAndExit(status)
}
