/// Arithmetic on values that come from configuration or apps. Validation bounds each value alone, but
/// sums and products of bounded values (lifetime + id * delta) can still exceed 64 bits: they saturate,
/// and a deadline at `.max` means "never" instead of a trap in the master or every new worker.
extension UInt64 {
    /// `self + other`, or `.max` when that would overflow.
    public func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (v, o) = addingReportingOverflow(other)
        return o ? .max : v
    }

    /// `self * other`, or `.max` when that would overflow.
    public func saturatingMultiply(_ other: UInt64) -> UInt64 {
        let (v, o) = multipliedReportingOverflow(by: other)
        return o ? .max : v
    }
}

extension Int {
    func saturatingAdd(_ other: Int) -> Int {
        let (v, o) = addingReportingOverflow(other)
        return o ? (other > 0 ? .max : .min) : v
    }

    func saturatingMultiply(_ other: Int) -> Int {
        let (v, o) = multipliedReportingOverflow(by: other)
        return o ? ((self < 0) == (other < 0) ? .max : .min) : v
    }
}

/// --max-requests for worker `workerID`: base + id * delta (uWSGI's spread), saturating; 0 = off.
public func maxRequests(base: Int, delta: Int, workerID: Int) -> Int {
    guard base > 0 else { return 0 }
    return base.saturatingAdd(max(0, workerID).saturatingMultiply(max(0, delta)))
}

/// Seconds given by an app (a Double) as nanoseconds; nil when it sets no usable limit: NaN, zero,
/// negative, infinite, or beyond what 64-bit nanoseconds hold (about 584 years).
public func nanoseconds(seconds: Double) -> UInt64? {
    guard seconds.isFinite, seconds > 0 else { return nil }
    let ns = seconds * 1e9
    guard ns < 1.8e19 else { return nil }
    return Swift.max(1, UInt64(ns))
}
