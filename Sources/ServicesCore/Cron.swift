/// A uWSGI cron line: minute, hour, day of month, month, weekday; -1 means any, and -N (N > 1) means
/// every N (uWSGI's `*/N`). Day and weekday both given match either, as in cron(8).
public struct CronSpec: Equatable, Sendable, CustomStringConvertible {
    public var minute: Int, hour: Int, day: Int, month: Int, weekday: Int

    /// Validates each field's range (weekday 0-7, 0 and 7 = Sunday).
    public init(minute: Int, hour: Int, day: Int, month: Int, weekday: Int) throws(CronError) {
        func check(_ v: Int, _ name: String, _ r: ClosedRange<Int>) throws(CronError) {
            if v < 0 {
                // Every N matches values divisible by N: a 0-based field still matches 0 at N = max + 1
                // (minute -60 is minute 0), a 1-based one never above its maximum (day -32 never comes).
                let most = r.lowerBound == 0 ? r.upperBound + 1 : r.upperBound
                if v == Int.min || -v > most { throw CronError("\(name) \(v): every-N must be between -1 and -\(most)") }
            } else if !r.contains(v) {
                throw CronError("\(name) \(v) is out of range \(r.lowerBound)...\(r.upperBound) (-1 = any)")
            }
        }
        try check(minute, "minute", 0...59)
        try check(hour, "hour", 0...23)
        try check(day, "day", 1...31)
        try check(month, "month", 1...12)
        try check(weekday, "weekday", 0...7)
        // With a weekday too, either may match (cron(8)); otherwise some month must hold such a day.
        if day != -1 && weekday == -1 {
            let longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            let possible = (1...12).contains { m in
                Self.field(month, matches: m) && (1...longest[m - 1]).contains { Self.field(day, matches: $0) }
            }
            if !possible { throw CronError("day \(day) with month \(month) never happens (no such date)") }
        }
        (self.minute, self.hour, self.day, self.month, self.weekday) = (minute, hour, day, month, weekday)
    }

    public var description: String { "\(minute) \(hour) \(day) \(month) \(weekday)" }

    private static func field(_ spec: Int, matches v: Int) -> Bool {
        if spec == -1 { return true }
        if spec < -1 { return v % -spec == 0 }
        return spec == v
    }

    /// Whether the civil minute `t` matches.
    public func matches(_ t: CivilTime) -> Bool {
        guard Self.field(minute, matches: t.minute), Self.field(hour, matches: t.hour),
              Self.field(month, matches: t.month) else { return false }
        let wd = weekday == 7 ? 0 : weekday
        let dayMatch = Self.field(day, matches: t.day), weekdayMatch = Self.field(wd, matches: t.weekday)
        if day != -1 && weekday != -1 { return dayMatch || weekdayMatch }
        return dayMatch && weekdayMatch
    }

    /// The first whole minute strictly after `localSeconds` (seconds since the epoch in local time, that is
    /// Unix time plus the UTC offset) that matches, as local seconds; nil if none within 5 years (Feb 31).
    public func nextMatch(after localSeconds: Int64) -> Int64? {
        var t = (localSeconds.floorDiv(60) + 1) * 60
        let limit = t + 5 * 366 * 86400
        while t < limit {
            let c = CivilTime(localSeconds: t)
            if matches(c) { return t }
            // Skip whole days that cannot match, then whole hours.
            let dayOK = {
                let wd = weekday == 7 ? 0 : weekday
                let d = Self.field(day, matches: c.day), w = Self.field(wd, matches: c.weekday)
                return Self.field(month, matches: c.month) && (day != -1 && weekday != -1 ? d || w : d && w)
            }()
            if !dayOK { t = (t.floorDiv(86400) + 1) * 86400; continue }
            if !Self.field(hour, matches: c.hour) { t = (t.floorDiv(3600) + 1) * 3600; continue }
            t += 60
        }
        return nil
    }
}

public struct CronError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A broken-down time (proleptic Gregorian), computed without libc so the scheduler stays pure.
public struct CivilTime: Equatable, Sendable {
    public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    /// 0 = Sunday.
    public let weekday: Int

    public init(localSeconds s: Int64) {
        let days = s.floorDiv(86400)
        let rem = Int(s - days * 86400)
        hour = rem / 3600
        minute = rem % 3600 / 60
        second = rem % 60
        // 1970-01-01 was a Thursday (4).
        weekday = Int(((days % 7) + 11) % 7)
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = z.floorDiv(146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0 && (self < 0) != (d < 0)) ? q - 1 : q
    }
}
