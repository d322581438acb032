/// Nanoseconds on the monotonic clock; every deadline in the cores is one of these.
public typealias Instant = UInt64

public let nanosecondsPerSecond: UInt64 = 1_000_000_000

/// Parses `30`, `1.5`, `250ms`, `2s` or `1m` into nanoseconds; nil for anything else (negative, empty, NaN).
public func parseDuration(_ text: String) -> UInt64? {
    var number = Substring(text)
    var scale = 1.0
    for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where number.hasSuffix(suffix) {
        number = number.dropLast(suffix.count)
        scale = factor
        break
    }
    guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(number),
          value.isFinite, value >= 0, value * scale < 1e9 else { return nil }
    return UInt64((value * scale * 1e9).rounded())
}

/// `1.5s`, `250ms`: how durations appear in log lines.
public func formatDuration(_ ns: UInt64) -> String {
    if ns < nanosecondsPerSecond { return "\(ns / 1_000_000)ms" }
    let tenths = (ns + 50_000_000) / 100_000_000
    return tenths % 10 == 0 ? "\(tenths / 10)s" : "\(tenths / 10).\(tenths % 10)s"
}
