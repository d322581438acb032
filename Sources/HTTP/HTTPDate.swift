/// The `Date` field's value (RFC 9110 §6.6.1: an origin server with a clock MUST send it) in IMF-fixdate
/// form (§5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. Formatted by arithmetic (never by strftime, whose
/// names follow the process locale, which an app may change). Pure: the server reads the clock.
public enum HTTPDate {
    /// The 29 bytes of IMF-fixdate for `seconds` since the epoch (UTC).
    public static func format(epochSeconds seconds: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(29)
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        // 1970-01-01 was a Thursday.
        let weekday = ((days % 7) + 7 + 4) % 7
        let (year, month, day) = civil(fromDays: days)
        out += dayNames[weekday * 3..<(weekday * 3 + 3)]
        out += [0x2C, 0x20]
        two(day, &out)
        out.append(0x20)
        out += monthNames[(month - 1) * 3..<((month - 1) * 3 + 3)]
        out.append(0x20)
        let y = max(0, min(9999, year))
        two(y / 100, &out)
        two(y % 100, &out)
        out.append(0x20)
        two(secondOfDay / 3600, &out)
        out.append(0x3A)
        two(secondOfDay / 60 % 60, &out)
        out.append(0x3A)
        two(secondOfDay % 60, &out)
        out += [0x20, 0x47, 0x4D, 0x54]  // " GMT"
        return out
    }

    private static let dayNames: [UInt8] = Array("SunMonTueWedThuFriSat".utf8)
    private static let monthNames: [UInt8] = Array("JanFebMarAprMayJunJulAugSepOctNovDec".utf8)

    private static func two(_ n: Int, _ out: inout [UInt8]) {
        out.append(UInt8(0x30 + n / 10 % 10))
        out.append(UInt8(0x30 + n % 10))
    }

    /// Howard Hinnant's days-from-civil inverse: (year, month 1-12, day 1-31) of a day count from 1970-01-01.
    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
