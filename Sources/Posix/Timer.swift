import CGlibcShim
import Glibc

/// A one-shot CLOCK_MONOTONIC timerfd: the only way deadlines wake a loop (no periodic tick).
public struct TimerFD: ~Copyable {
    public let fd: FileDescriptor
    public private(set) var armedAt: UInt64? = nil

    public init() throws {
        fd = FileDescriptor(adopting: try syscall("timerfd_create") { shim_timerfd_create() })
    }

    /// Fires once at `deadline` (monotonic ns); nil disarms. Re-arming to the same deadline is skipped.
    public mutating func arm(at deadline: UInt64?) throws {
        if deadline == armedAt { return }
        let at = deadline.map { max($0, 1) } ?? 0
        try syscall("timerfd_settime") { shim_timerfd_arm(fd.raw, at) }
        armedAt = deadline
    }

    /// Clears the readable state after it fired.
    public mutating func acknowledge() {
        var n: UInt64 = 0
        _ = Glibc.read(fd.raw, &n, 8)
        armedAt = nil
    }
}
