import Glibc
import Posix
import SWSGI

/// While Python starts or the master imports the app, a crash must not look like swsgi crashing, nor end
/// it without a word: an abort() (os.abort(), a failed assertion in an extension) would get the Swift
/// runtime's crash report naming swsgi's frames, and a fault (a NULL dereference through ctypes, a bad
/// extension) ended the master with 139 and no line at all. Handlers, installed only around the import,
/// write one line and remove the temporary socket name: SIGABRT then ends the process with `status`;
/// SIGSEGV, SIGBUS, SIGFPE and SIGILL take their default action, so the exit status stays the signal's.
/// Afterwards the previous dispositions are back. In a process the app forked meanwhile the handlers say
/// nothing and remove nothing: that process is not swsgi. (SIGKILL cannot be caught: an app that kills
/// itself that way ends the master with 137 and no line.)
enum CrashGuard {
    /// SIGABRT first (index 0), then the faults; the handler finds its slot by a switch, not a search.
    static let signals: [Int32] = [SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL]

    /// Installs the handlers (status > 0: `abortLine` written at SIGABRT, `faultLine(SIGNAME)` at a fault,
    /// each cut to 511 bytes) or puts the previous dispositions back (0). Throws with the call named when
    /// sigaction or sigaltstack fails.
    static func set(_ status: Int32, abortLine: String?, faultLine: (String) -> String) throws {
        let state = crashGuardState
        if status > 0, let abortLine {
            state.pointee.words[0].keep(abortLine)
            for i in 1..<signals.count { state.pointee.words[i].keep(faultLine(SignalName.name(signals[i]))) }
            state.pointee.status = status
            state.pointee.owner = getpid()
            guard !state.pointee.installed else { return }
            // A fault from a runaway recursion has no stack left to run the handler on: give it its own.
            var current = stack_t()
            guard sigaltstack(nil, &current) == 0 else { throw SWSGIError("sigaltstack: \(errnoText(errno))") }
            if current.ss_flags & Int32(SS_DISABLE) != 0, let stack = state.pointee.altStack {
                var own = stack_t(ss_sp: stack, ss_flags: 0, ss_size: CrashGuardState.altStackBytes)
                guard sigaltstack(&own, nil) == 0 else { throw SWSGIError("sigaltstack: \(errnoText(errno))") }
                state.pointee.ownAltStack = true
            }
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = crashGuardHandler
            sa.sa_flags = SA_ONSTACK
            sigemptyset(&sa.sa_mask)
            for (i, sig) in signals.enumerated() {
                guard sigaction(sig, &sa, state.pointee.previous + i) == 0 else {
                    let e = errno
                    for j in 0..<i { _ = sigaction(signals[j], state.pointee.previous + j, nil) }
                    throw SWSGIError("sigaction(\(SignalName.name(sig))): \(errnoText(e))")
                }
            }
            state.pointee.installed = true
        } else if state.pointee.installed {
            state.pointee.status = 0
            for (i, sig) in signals.enumerated() {
                guard sigaction(sig, state.pointee.previous + i, nil) == 0 else {
                    throw SWSGIError("sigaction(\(SignalName.name(sig))): \(errnoText(errno))")
                }
            }
            state.pointee.installed = false
            if state.pointee.ownAltStack {
                var off = stack_t(ss_sp: nil, ss_flags: Int32(SS_DISABLE), ss_size: 0)
                guard sigaltstack(&off, nil) == 0 else { throw SWSGIError("sigaltstack: \(errnoText(errno))") }
                state.pointee.ownAltStack = false
            }
        }
    }
}

private struct CrashGuardState {
    static let altStackBytes = 64 * 1024
    var installed = false
    var ownAltStack = false
    /// The process that armed the guard: the only one whose crash it reports.
    var owner: pid_t = 0
    var status: Int32 = 0
    /// One per `CrashGuard.signals`, allocated up front.
    let previous: UnsafeMutablePointer<sigaction>
    let words: UnsafeMutablePointer<LastWords>
    /// nil when malloc refused it (a --limit-as too low for Python): the guard then runs on the faulting
    /// stack, as every handler did before, rather than stopping swsgi before it can say why.
    let altStack: UnsafeMutableRawPointer?

    init() {
        let n = CrashGuard.signals.count
        previous = .allocate(capacity: n)
        previous.initialize(repeating: sigaction(), count: n)
        words = .allocate(capacity: n)
        for i in 0..<n { (words + i).initialize(to: LastWords()) }
        altStack = malloc(Self.altStackBytes)
    }
}

/// Allocated once, never freed: the handler reads it without allocating. `nonisolated(unsafe)` because a
/// pointer is not Sendable; the `let` never changes and only the thread that loads the app writes the pointee.
private nonisolated(unsafe) let crashGuardState: UnsafeMutablePointer<CrashGuardState> = {
    let p = UnsafeMutablePointer<CrashGuardState>.allocate(capacity: 1)
    p.initialize(to: CrashGuardState())
    return p
}()

/// Async-signal-safe: getpid, write, unlink, sigaction, raise, _exit only.
private let crashGuardHandler: @convention(c) (Int32) -> Void = { sig in
    let state = crashGuardState
    let index: Int
    switch sig {
    case SIGABRT: index = 0
    case SIGSEGV: index = 1
    case SIGBUS: index = 2
    case SIGFPE: index = 3
    default: index = 4
    }
    if getpid() == state.pointee.owner && state.pointee.status > 0 {
        if index == 0 { state.pointee.words[0].sayAndExit(state.pointee.status) }
        state.pointee.words[index].say()
    }
    // The default action, now: a fault returning would only fault again, and a signal sent with kill(2)
    // would be lost. Blocked while this handler runs, it lands as the handler returns.
    var dfl = sigaction()
    dfl.__sigaction_handler.sa_handler = SIG_DFL
    sigemptyset(&dfl.sa_mask)
    _ = sigaction(sig, &dfl, nil)
    _ = raise(sig)
}
