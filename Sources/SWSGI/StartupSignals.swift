import CGlibcShim
import Glibc
import Posix

/// swsgi's master before its event loop exists (binding, a Python app's import that may take seconds):
/// TERM, INT, QUIT and HUP are recorded instead of killing it by their default action, which would leave
/// its temporary socket behind and say nothing. The loop's start then decides what they mean.
enum StartupSignals {
    static let recorded: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP]

    /// Installs the recording handler for each (SA_RESTART; not inherited across exec).
    static func install() throws {
        // Touching the global here runs its initializer now, never in the handler.
        _ = startupSignalsMask
        startupSignalsOwner.pointee = getpid()
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = startupSignalRecorder
        sa.sa_flags = SA_RESTART
        sigemptyset(&sa.sa_mask)
        for sig in recorded {
            try syscall("sigaction", "start-up signals") { sigaction(sig, &sa, nil) }
        }
    }

    /// Puts back the default disposition of each of those still handled by the recorder (one the app has
    /// replaced meanwhile is left for the caller to see), and returns the signals recorded as a bit mask
    /// (1 << signal number).
    static func release() -> UInt {
        for sig in recorded {
            var now = sigaction()
            if sigaction(sig, nil, &now) != 0 { continue }
            if (now.sa_flags & SA_SIGINFO) == 0,
               unsafeBitCast(now.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(startupSignalRecorder, to: Int.self) {
                _ = shim_sigaction_default(sig)
            }
        }
        return UInt(UInt32(bitPattern: startupSignalsMask.pointee))
    }

    /// Those of `recorded` that arrived while blocked (during a Python app's import), taken from the pending
    /// set as bits (1 << signal number), as `release` reports the recorded ones.
    static func takePending() -> UInt {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in recorded { sigaddset(&set, sig) }
        var now = timespec(tv_sec: 0, tv_nsec: 0)
        var mask: UInt = 0
        while true {
            let sig = sigtimedwait(&set, nil, &now)
            if sig > 0 { mask |= 1 << UInt(sig); continue }
            if sig < 0 && errno == EINTR { continue }
            return mask
        }
    }
}

/// Allocated once and never freed, so the handler reaches it without a lazy initializer or a lock.
/// `nonisolated(unsafe)` because a pointer is not Sendable; the `let` never changes and the pointee is
/// one word written by the handler and read by the master's only thread.
private nonisolated(unsafe) let startupSignalsMask: UnsafeMutablePointer<sig_atomic_t> = {
    let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// The master's pid: in a process its app forks during the import (multiprocessing), the signal does what it
/// does by default instead of being recorded for a start-up that is not that process's.
private nonisolated(unsafe) let startupSignalsOwner: UnsafeMutablePointer<pid_t> = {
    let p = UnsafeMutablePointer<pid_t>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// Runs in signal context: sets the signal's bit and nothing else (in the master).
private let startupSignalRecorder: @convention(c) (Int32) -> Void = { sig in
    if getpid() != startupSignalsOwner.pointee {
        _ = shim_sigaction_default(sig)
        raise(sig)
        return
    }
    startupSignalsMask.pointee |= 1 &<< sig
}
