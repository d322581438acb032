/// Rate-limits repeated log lines: the first `burst` lines of a kind in a window go out at once, more of
/// the same kind within `windowNanoseconds` are counted instead, and the count goes out when the window ends (or with the next
/// line of that kind). "The same kind" ignores numbers, so `cannot fork worker 7: ...` and
/// `cannot fork worker 8: ...` are one kind. A failing fork retried for 300 workers is then a few lines a
/// second, not thousands. Values in, lines out: the caller owns the clock and the writing.
public struct RepeatedLineFilter: Sendable {
    public let windowNanoseconds: UInt64
    /// At most this many kinds are tracked; the oldest is forgotten first.
    public let maxKinds: Int
    /// Lines of one kind written per window before counting starts (a few reloads a second stay visible).
    public let burst: Int

    private struct Window: Sendable {
        var start: Instant
        var suppressed: Int
        var written: Int
        var last: String
    }
    private var windows: [String: Window] = [:]

    public init(windowNanoseconds: UInt64 = 1_000_000_000, maxKinds: Int = 256, burst: Int = 10) {
        self.windowNanoseconds = windowNanoseconds
        self.maxKinds = maxKinds
        self.burst = max(1, burst)
    }

    /// The line with every run of digits replaced by `#`.
    static func kind(_ line: String) -> String {
        var out = ""
        var inDigits = false
        for c in line.unicodeScalars {
            if c >= "0" && c <= "9" {
                if !inDigits { out.unicodeScalars.append("#") }
                inDigits = true
            } else {
                out.unicodeScalars.append(c)
                inDigits = false
            }
        }
        return out
    }

    /// The lines to write now for `line`, its kind told by its text with the numbers masked.
    public mutating func admit(_ line: String, now: Instant) -> [String] {
        admit(line, kind: Self.kind(line), now: now)
    }

    /// The lines to write now for `line` of the named `kind` (the caller's typed kind: no text matching).
    public mutating func admit(_ line: String, kind k: String, now: Instant) -> [String] {
        var out: [String] = []
        if var w = windows[k] {
            if now < w.start.saturatingAdd(windowNanoseconds) {
                if w.written < burst {
                    w.written += 1
                    windows[k] = w
                    return [line]
                }
                w.suppressed += 1
                w.last = line
                windows[k] = w
                return []
            }
            if w.suppressed > 0 { out.append(summary(w, now: now)) }
        } else if windows.count >= maxKinds, let oldest = windows.min(by: { $0.value.start < $1.value.start }) {
            if oldest.value.suppressed > 0 { out.append(summary(oldest.value, now: now)) }
            windows[oldest.key] = nil
        }
        windows[k] = Window(start: now, suppressed: 0, written: 1, last: line)
        out.append(line)
        return out
    }

    /// When a window holding suppressed lines ends (nil: nothing pending, so no wake-up is needed).
    public var nextFlush: Instant? {
        windows.values.filter { $0.suppressed > 0 }.map { $0.start.saturatingAdd(windowNanoseconds) }.min()
    }

    /// Summaries for the windows that have ended; a kind still repeating gets a fresh window.
    public mutating func flush(now: Instant) -> [String] {
        var out: [String] = []
        for (k, w) in windows where now >= w.start.saturatingAdd(windowNanoseconds) {
            if w.suppressed > 0 {
                out.append(summary(w, now: now))
                // Still repeating: the fresh window counts from the start, no new burst.
                windows[k] = Window(start: now, suppressed: 0, written: burst, last: w.last)
            } else {
                windows[k] = nil
            }
        }
        return out
    }

    /// Summaries of every window holding suppressed lines, whether it has ended or not: the process is exiting,
    /// and what was counted must not be lost with it.
    public mutating func flushAll(now: Instant) -> [String] {
        let out = windows.values.filter { $0.suppressed > 0 }.sorted { $0.start < $1.start }.map { summary($0, now: now) }
        windows = [:]
        return out
    }

    private func summary(_ w: Window, now: Instant) -> String {
        let ms = (now - min(now, w.start)) / 1_000_000
        return "(\(w.suppressed) similar lines suppressed in the last \(ms) ms; the last: \(w.last))"
    }
}
