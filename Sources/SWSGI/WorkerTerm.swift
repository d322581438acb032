import CGlibcShim
import Glibc
import Posix
import WorkerCore

/// A worker's SIGTERM: harakiri's graceful signal for the request in hand runs the app's handler as it
/// always did; any other TERM (systemd's group TERM, an operator's kill) is a stop request the event loop
/// reads from a pipe. The handler tells them apart by the scoreboard mark the master sets before
/// signalling a harakiri (`Scoreboard.Field.harakiriFiredFor`).
enum WorkerTerm {
    /// Installed right after fork (so a TERM during --lazy-apps' import is kept, not fatal) and again once
    /// the app is loaded, when the TERM handler the app or harakiri set up is taken as harakiri's.
    /// Called again, it keeps the chain it has unless the disposition changed meanwhile.
    /// `messageFD`: the master's pipe (-1 before the worker has it): a stop-TERM is told there from the handler
    /// itself, so the master knows at once even while a long request holds the worker's loop.
    static func install(notifyFD: Int32, scoreboard: Scoreboard, slot: Int, chainHarakiri: Bool, messageFD: Int32 = -1) throws {
        // Touching the global here runs its initializer now, never in the handler.
        let state = workerTermState
        var now = sigaction()
        try syscall("sigaction", "SIGTERM") { sigaction(SIGTERM, nil, &now) }
        let ours = (now.sa_flags & SA_SIGINFO) != 0
            && bits(now.__sigaction_handler.sa_sigaction) == bits(workerTermHandler)
        if !ours {
            if chainHarakiri {
                state.pointee.chain = now
            } else {
                var dfl = sigaction()
                dfl.__sigaction_handler.sa_handler = SIG_DFL
                state.pointee.chain = dfl
            }
        }
        // Only this worker's TERM is a stop request: in a process the app forks, TERM does what it does by default
        // (a multiprocessing child's terminate(), a group TERM), and no signal is blocked there.
        state.pointee.ownerPID = getpid()
        state.pointee.termRecord = (getpid(), WorkerLifecycle.MasterMessage.gotTERM.rawValue)
        state.pointee.messageFD = messageFD
        try ForkChildSignals.unblockAll()
        state.pointee.notifyFD = notifyFD
        state.pointee.harakiriMark = chainHarakiri ? UnsafePointer(scoreboard.cell(slot, .harakiriFiredFor)) : nil
        state.pointee.requestNumber = chainHarakiri ? UnsafePointer(scoreboard.cell(slot, .requestCounter)) : nil
        var sa = sigaction()
        sa.__sigaction_handler.sa_sigaction = workerTermHandler
        sa.sa_flags = SA_SIGINFO | SA_RESTART
        sigemptyset(&sa.sa_mask)
        try syscall("sigaction", "SIGTERM") { sigaction(SIGTERM, &sa, nil) }
        var one = sigset_t()
        sigemptyset(&one)
        sigaddset(&one, SIGTERM)
        try syscall("sigprocmask", "SIGTERM") { sigprocmask(SIG_UNBLOCK, &one, nil) }
    }

    /// A stop-TERM has arrived (no syscall: read on the request path).
    static var arrived: Bool { workerTermState.pointee.arrived != 0 }
}

/// What the handler reads. Written only outside signal context (in `install`), before or while the
/// handler is installed, as the C version did.
private struct WorkerTermState {
    var notifyFD: Int32 = -1
    /// The worker's pid: a TERM in another process (a fork of the app's) takes the default action.
    var ownerPID: pid_t = 0
    /// The master's pipe and the 8-byte record telling it of a stop-TERM (the worker's loop tells it again later:
    /// the master takes the second as the same news).
    var messageFD: Int32 = -1
    var termRecord: (Int32, Int32) = (0, 0)
    /// The scoreboard cells: the request harakiri fired for, the request in hand (nil: TERM is not
    /// harakiri's graceful signal).
    var harakiriMark: UnsafePointer<Int64>? = nil
    var requestNumber: UnsafePointer<Int64>? = nil
    /// The disposition harakiri's TERM runs (the app's handler, or the default).
    var chain = sigaction()
    var arrived: sig_atomic_t = 0
}

/// Allocated once and never freed: the handler reaches its state through this pointer without locks or
/// allocation. `nonisolated(unsafe)` because a pointer is not Sendable; the `let` itself never changes,
/// and the pointee is shared only with the signal handler of the same thread, which reads plain words.
private nonisolated(unsafe) let workerTermState: UnsafeMutablePointer<WorkerTermState> = {
    let p = UnsafeMutablePointer<WorkerTermState>.allocate(capacity: 1)
    p.initialize(to: WorkerTermState())
    return p
}()

/// A C function pointer's address, to compare dispositions.
private func bits<F>(_ f: F) -> Int { unsafeBitCast(f, to: Int.self) }

/// Runs in signal context: async-signal-safe calls only (write, raise, sigaction), no allocation, and
/// only state initialized before installation.
private let workerTermHandler: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = { sig, info, context in
    let saved = errno
    let state = workerTermState
    if getpid() != state.pointee.ownerPID {
        _ = shim_sigaction_default(sig)
        raise(sig)
        errno = saved
        return
    }
    let marked = state.pointee.harakiriMark?.pointee ?? 0
    if marked > 0, let request = state.pointee.requestNumber, marked == request.pointee {
        // Harakiri's graceful signal for the request in hand: what TERM did before this handler existed.
        let chain = state.pointee.chain
        if (chain.sa_flags & SA_SIGINFO) != 0 {
            chain.__sigaction_handler.sa_sigaction?(sig, info, context)
        } else if let handler = chain.__sigaction_handler.sa_handler {
            // unsafeBitCast is transparent (no generic call in signal context).
            if unsafeBitCast(handler, to: Int.self) != unsafeBitCast(SIG_IGN, to: Int.self) { handler(sig) }
        } else {
            // No handler of the app's: TERM ends the worker, as its default action always did here.
            _ = shim_sigaction_default(sig)
            raise(sig)
        }
    } else {
        state.pointee.arrived = 1
        var one: UInt8 = 1
        if state.pointee.notifyFD >= 0 { _ = write(state.pointee.notifyFD, &one, 1) }
        if state.pointee.messageFD >= 0 {
            var record = state.pointee.termRecord
            _ = withUnsafeBytes(of: &record) { write(state.pointee.messageFD, $0.baseAddress, 8) }
        }
    }
    errno = saved
}
