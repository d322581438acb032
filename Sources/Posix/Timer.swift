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

/// A timerfd held as a raw fd, for timers shared across fork (the master creates one per worker; the
/// worker arms it at each request start, the master wakes on it).
public enum SharedTimer {
    public static func create() throws -> Int32 {
        try syscall("timerfd_create") { shim_timerfd_create() }
    }

    /// Fires once at `deadline` (monotonic ns); nil disarms.
    public static func arm(_ fd: Int32, at deadline: UInt64?) {
        _ = shim_timerfd_arm(fd, deadline.map { max($0, 1) } ?? 0)
    }

    public static func acknowledge(_ fd: Int32) {
        var n: UInt64 = 0
        _ = Glibc.read(fd, &n, 8)
    }
}
