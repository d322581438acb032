/// Nanoseconds on the monotonic clock; every deadline in the cores is one of these.
public typealias Instant = UInt64

public let nanosecondsPerSecond: UInt64 = 1_000_000_000

/// Durations above this many seconds (about 31 years) are refused rather than overflowing.
public let maxDurationSeconds: UInt64 = 1_000_000_000

/// Why a text is not a duration.
public enum DurationProblem: Error, Equatable {
    case negative
    case notADuration
    case tooLarge
}

/// The one duration grammar both programs take: a decimal number of seconds (`30`, `0.5`) or one with a
/// unit (`250ms`, `2s`, `1.5m`, `1h`), as exact nanoseconds (integer arithmetic: no rounding surprises).
public func parseDurationChecked(_ text: String) -> Result<UInt64, DurationProblem> {
    if text.hasPrefix("-") { return .failure(.negative) }
    var number = Substring(text)
    var unitNanoseconds: UInt64 = nanosecondsPerSecond
    for (suffix, ns) in [("ms", 1_000_000), ("s", nanosecondsPerSecond), ("m", 60 * nanosecondsPerSecond), ("h", 3600 * nanosecondsPerSecond)]
    where number.hasSuffix(suffix) {
        number = number.dropLast(suffix.count)
        unitNanoseconds = UInt64(ns)
        break
    }
    let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    let whole = parts[0]
    let fraction = parts.count > 1 ? parts[1] : ""
    let digits = { (s: Substring) in s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
    guard digits(whole), digits(fraction), !(whole.isEmpty && fraction.isEmpty) else {
        return .failure(.notADuration)
    }
    let significant = whole.drop { $0 == "0" }
    guard significant.utf8.count <= 12, let w = whole.isEmpty ? 0 : UInt64(whole) else { return .failure(.tooLarge) }
    // whole * unit + fraction * unit / 10^digits, every step checked.
    let (wholeNs, o1) = w.multipliedReportingOverflow(by: unitNanoseconds)
    if o1 { return .failure(.tooLarge) }
    var fractionNs: UInt64 = 0
    var scale = unitNanoseconds
    // Digits past the 18th are below a nanosecond at any unit.
    for d in fraction.utf8.prefix(18) {
        scale /= 10
        fractionNs += UInt64(d - 0x30) * scale
    }
    let total = wholeNs + fractionNs
    if total > maxDurationSeconds * nanosecondsPerSecond { return .failure(.tooLarge) }
    return .success(total)
}

/// `parseDurationChecked` without the reason: nil for anything that is not a duration.
public func parseDuration(_ text: String) -> UInt64? {
    try? parseDurationChecked(text).get()
}

/// `1.5s`, `250ms`: how durations appear in log lines.
public func formatDuration(_ ns: UInt64) -> String {
    if ns < nanosecondsPerSecond { return "\(ns / 1_000_000)ms" }
    let tenths = ns / 100_000_000 + (ns % 100_000_000 >= 50_000_000 ? 1 : 0)
    return tenths % 10 == 0 ? "\(tenths / 10)s" : "\(tenths / 10).\(tenths % 10)s"
}
