import CGlibcShim

/// Nanoseconds on CLOCK_MONOTONIC: immune to wall-clock jumps, the clock every deadline uses.
public func monotonicNanoseconds() -> UInt64 { shim_monotonic_ns() }
