extension UInt64 {
    public func saturatingAdd(_ o: UInt64) -> UInt64 {
        let (r, over) = addingReportingOverflow(o)
        return over ? .max : r
    }
    public func saturatingMultiply(_ o: UInt64) -> UInt64 {
        let (r, over) = multipliedReportingOverflow(by: o)
        return over ? .max : r
    }
}

/// A timer interval a caller may ask for: above zero and at most a year (366 days). Converting seconds or
/// milliseconds checks the bound before multiplying, so no caller value can overflow.
public enum TimerInterval {
    public static let maximumNanoseconds: UInt64 = 366 * 86_400 * 1_000_000_000

    public static func nanoseconds(_ ns: UInt64) throws(TimerIntervalError) -> UInt64 {
        guard ns > 0, ns <= maximumNanoseconds else { throw TimerIntervalError("\(ns) ns") }
        return ns
    }

    public static func nanoseconds(milliseconds ms: Int) throws(TimerIntervalError) -> UInt64 {
        guard ms > 0, UInt64(ms) <= maximumNanoseconds / 1_000_000 else { throw TimerIntervalError("\(ms) ms") }
        return UInt64(ms) * 1_000_000
    }

    public static func nanoseconds(seconds: Int) throws(TimerIntervalError) -> UInt64 {
        guard seconds > 0, UInt64(seconds) <= maximumNanoseconds / 1_000_000_000 else { throw TimerIntervalError("\(seconds) s") }
        return UInt64(seconds) * 1_000_000_000
    }

    /// NaN and infinities are refused like any other out-of-range value.
    public static func nanoseconds(seconds: Double) throws(TimerIntervalError) -> UInt64 {
        guard seconds > 0, seconds <= Double(maximumNanoseconds / 1_000_000_000) else { throw TimerIntervalError("\(seconds) s") }
        return try nanoseconds(max(1, UInt64(seconds * 1e9)))
    }
}

public struct TimerIntervalError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ value: String) { description = "timer: \(value) is not an interval between 1 ns and 366 days" }
}
