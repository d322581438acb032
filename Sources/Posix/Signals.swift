import CGlibcShim
@_exported import Common
import Glibc

/// A sigset_t value.
public struct SignalSet {
    public var raw = sigset_t()

    public init(_ signals: [Int32]) {
        sigemptyset(&raw)
        for s in signals { sigaddset(&raw, s) }
    }

    /// Blocks these signals for the calling thread so they queue for a signalfd instead of running handlers.
    public func block() throws {
        var set = raw
        let r = pthread_sigmask(SIG_BLOCK, &set, nil)
        if r != 0 { throw SyscallError("pthread_sigmask", errno: r) }
    }

    public func unblock() throws {
        var set = raw
        let r = pthread_sigmask(SIG_UNBLOCK, &set, nil)
        if r != 0 { throw SyscallError("pthread_sigmask", errno: r) }
    }
}

/// A process forked from this one (an app's `multiprocessing` child) starts with no signal blocked: the signals a
/// worker blocks for its signalfd, and those its request threads block (all, so that signals reach the main
/// thread), would stay blocked in the child and in what it runs, so that a supervisor's stop, Ctrl-C or the
/// child's own terminate() could not stop it. Registered once per process (pthread_atfork).
/// The master turns it on for its app import only (`active`): the workers it forks itself must keep the mask it
/// blocked for them until their signalfd exists.
public enum ForkChildSignals {
    public static func unblockAll() throws {
        forkChildUnblocks.pointee = true
        guard !registered else { return }
        let r = pthread_atfork(nil, nil, { if forkChildUnblocks.pointee { _ = pthread_sigmask(SIG_SETMASK, forkChildMask, nil) } })
        if r != 0 { throw SyscallError("pthread_atfork", errno: r) }
        registered = true
    }

    /// Off again (the master after its import): a fork from here keeps the caller's mask.
    public static func stop() { forkChildUnblocks.pointee = false }

    nonisolated(unsafe) private static var registered = false
}

/// Whether the hook empties the mask; a word read in the fork child only.
private nonisolated(unsafe) let forkChildUnblocks: UnsafeMutablePointer<Bool> = {
    let p = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
    p.initialize(to: false)
    return p
}()

/// The empty set the hook installs; made before the hook is registered.
private nonisolated(unsafe) let forkChildMask: UnsafeMutablePointer<sigset_t> = {
    let p = UnsafeMutablePointer<sigset_t>.allocate(capacity: 1)
    sigemptyset(p)
    return p
}()

/// A non-blocking signalfd: blocked signals arrive as readable records, never in a handler.
public struct SignalFD: ~Copyable {
    public let fd: FileDescriptor

    /// Blocks `signals` and opens a signalfd for them.
    public init(_ signals: [Int32]) throws {
        let set = SignalSet(signals)
        try set.block()
        var raw = set.raw
        fd = FileDescriptor(adopting: try syscall("signalfd") { shim_signalfd(&raw) })
    }

    /// The next pending signal and its sender's pid, or nil when none is pending.
    public func next() throws -> (signal: Int32, senderPID: pid_t)? {
        var sender: Int32 = 0
        let s = try syscall("read(signalfd)") { shim_read_signalfd(fd.raw, &sender) }
        return s == 0 ? nil : (s, sender)
    }
}

/// Sends `signal` to `pid` (a negative pid is a process group). Returns false when nothing is there (ESRCH).
@discardableResult
public func sendSignal(_ signal: Int32, to pid: pid_t) throws -> Bool {
    if kill(pid, signal) == 0 { return true }
    if errno == ESRCH { return false }
    throw SyscallError("kill", context: "\(pid), \(SignalName.name(signal))")
}

/// Writes to a reader that went away must fail with EPIPE instead of killing the process.
/// (Children get default dispositions back when they are spawned.)
public func ignoreSIGPIPE() throws {
    try syscall("sigaction(SIGPIPE)") { shim_ignore_sigpipe() }
}

/// A C signal handler: it runs inside the signal, so it may only call async-signal-safe functions.
public typealias SignalHandler = @convention(c) (Int32) -> Void

/// Installs `handler` for `sig` (SA_RESTART) and unblocks it.
public func installSignalHandler(_ sig: Int32, _ handler: SignalHandler) throws {
    try syscall("sigaction", SignalName.name(sig)) { shim_install_handler(sig, handler) }
}

/// Puts `signals` back to their default disposition (app code run in this process, such as a Python
/// app's `signal.signal(SIGCHLD, SIG_IGN)` at import, may have changed them); returns those that had
/// been changed.
/// Those of `signals` whose disposition is not the default (ignored or handled), without changing any.
public func signalsNotAtDefault(_ signals: [Int32]) throws -> [Int32] {
    try signals.filter { sig in try syscall("sigaction", SignalName.name(sig)) { shim_signal_is_default(sig) } != 1 }
}

public func restoreDefaultDispositions(_ signals: [Int32]) throws -> [Int32] {
    var changed: [Int32] = []
    for sig in signals {
        let isDefault = try syscall("sigaction", SignalName.name(sig)) { shim_signal_is_default(sig) }
        if isDefault == 1 { continue }
        try syscall("sigaction", SignalName.name(sig)) { shim_sigaction_default(sig) }
        changed.append(sig)
    }
    return changed
}
