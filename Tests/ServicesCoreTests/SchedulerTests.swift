import ServicesCore
import Testing

/// Local seconds for a civil UTC time (offset 0), via the inverse of CivilTime (days_from_civil).
func seconds(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ min: Int = 0, _ s: Int = 0) -> Int64 {
    let yy = Int64(m <= 2 ? y - 1 : y)
    let era = (yy >= 0 ? yy : yy - 399) / 400
    let yoe = yy - era * 400
    let mp = Int64(m > 2 ? m - 3 : m + 9)
    let doy = (153 * mp + 2) / 5 + Int64(d) - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    return days * 86400 + Int64(h) * 3600 + Int64(min) * 60 + Int64(s)
}

/// A clock the test moves by hand: monotonic starts at 1_000 s, wall at `wall` (UTC+offset).
struct FakeClock {
    var monotonic: UInt64 = 1_000_000_000_000
    var unix: Int64
    var offset: Int64 = 0
    init(wall: Int64, offset: Int64 = 0) { unix = (wall - offset) * 1_000_000_000; self.offset = offset }
    var value: TimerScheduler.Clock { .init(monotonic: monotonic, unixNanoseconds: unix, utcOffsetSeconds: offset) }
    mutating func advance(ns: UInt64) { monotonic += ns; unix += Int64(ns) }
}

@Suite struct CronTests {
    @Test func civilTimeKnownDates() {
        let t = CivilTime(localSeconds: 0)
        #expect((t.year, t.month, t.day, t.weekday) == (1970, 1, 1, 4))
        let leap = CivilTime(localSeconds: seconds(2028, 2, 29, 13, 7, 9))
        #expect((leap.year, leap.month, leap.day, leap.hour, leap.minute, leap.second) == (2028, 2, 29, 13, 7, 9))
        #expect(CivilTime(localSeconds: seconds(2026, 11, 29)).weekday == 0, "29 Nov 2026 is a Sunday")
        #expect(CivilTime(localSeconds: -1).year == 1969)
    }

    @Test func nextMatchFindsTheMinute() throws {
        let spec = try CronSpec(minute: 5, hour: 12, day: -1, month: -1, weekday: -1)
        #expect(spec.nextMatch(after: seconds(2026, 11, 29, 12, 4, 59)) == seconds(2026, 11, 29, 12, 5))
        // Exactly at the minute: the next one is tomorrow (strictly after).
        #expect(spec.nextMatch(after: seconds(2026, 11, 29, 12, 5)) == seconds(2026, 11, 30, 12, 5))
        #expect(spec.nextMatch(after: seconds(2026, 12, 31, 23, 0)) == seconds(2027, 1, 1, 12, 5))
    }

    @Test func everyNAndAny() throws {
        let every15 = try CronSpec(minute: -15, hour: -1, day: -1, month: -1, weekday: -1)
        #expect(every15.nextMatch(after: seconds(2026, 1, 1, 10, 16)) == seconds(2026, 1, 1, 10, 30))
        let any = try CronSpec(minute: -1, hour: -1, day: -1, month: -1, weekday: -1)
        #expect(any.nextMatch(after: seconds(2026, 1, 1, 10, 16, 30)) == seconds(2026, 1, 1, 10, 17))
    }

    @Test func dayAndWeekdayMatchEitherLikeCron() throws {
        // The 13th, or any Friday (5).
        let spec = try CronSpec(minute: 0, hour: 0, day: 13, month: -1, weekday: 5)
        // Sunday 29 Nov 2026 -> Friday 4 Dec 2026 comes before 13 Dec.
        #expect(spec.nextMatch(after: seconds(2026, 11, 29, 1)) == seconds(2026, 12, 4))
        // Weekday alone; 7 is Sunday too.
        let sunday = try CronSpec(minute: 30, hour: 2, day: -1, month: -1, weekday: 7)
        #expect(sunday.nextMatch(after: seconds(2026, 11, 30)) == seconds(2026, 12, 6, 2, 30))
    }

    @Test func datesThatNeverComeAreRefusedAtRegistration() throws {
        // Accepted, they would silently never fire.
        let never: [(Int, Int, String)] = [(30, 2, "never happens"), (31, 2, "never happens"), (31, 4, "never happens"),
                                            (31, 11, "never happens"), (-32, -1, "every-N must be between -1 and -31"),
                                            (-1, -13, "every-N must be between -1 and -12"), (31, -11, "never happens")]
        for (day, month, message) in never {
            #expect(throws: CronError.self, "day \(day) month \(month)") { try CronSpec(minute: 0, hour: 0, day: day, month: month, weekday: -1) }
            do { _ = try CronSpec(minute: 0, hour: 0, day: day, month: month, weekday: -1) } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
        // Possible ones stay accepted: every 2nd month includes 31-day months, the 31st every month, a weekday
        // rescues an impossible day (either matches), -60 minutes and -24 hours match 0.
        _ = try CronSpec(minute: 0, hour: 0, day: 31, month: -2, weekday: -1)
        _ = try CronSpec(minute: 0, hour: 0, day: 31, month: -1, weekday: -1)
        _ = try CronSpec(minute: -60, hour: -24, day: -31, month: -12, weekday: -8)
        let either = try CronSpec(minute: 0, hour: 0, day: 30, month: 2, weekday: 1)
        #expect(either.nextMatch(after: seconds(2026, 1, 1)) == seconds(2026, 2, 2), "the first Monday of February")
        let leapDay = try CronSpec(minute: 0, hour: 0, day: 29, month: 2, weekday: -1)
        #expect(leapDay.nextMatch(after: seconds(2026, 1, 1)) == seconds(2028, 2, 29))
    }

    @Test func outOfRangeFieldsAreRefused() {
        #expect(throws: CronError.self) { try CronSpec(minute: 60, hour: -1, day: -1, month: -1, weekday: -1) }
        #expect(throws: CronError.self) { try CronSpec(minute: -1, hour: 24, day: -1, month: -1, weekday: -1) }
        #expect(throws: CronError.self) { try CronSpec(minute: -1, hour: -1, day: 0, month: -1, weekday: -1) }
        #expect(throws: CronError.self) { try CronSpec(minute: -1, hour: -1, day: -1, month: 13, weekday: -1) }
        #expect(throws: CronError.self) { try CronSpec(minute: -1, hour: -1, day: -1, month: -1, weekday: 8) }
        #expect(throws: CronError.self) { try CronSpec(minute: -61, hour: -1, day: -1, month: -1, weekday: -1) }
        #expect(throws: CronError.self) { try CronSpec(minute: Int.min, hour: -1, day: -1, month: -1, weekday: -1) }
    }
}

@Suite struct TimerSchedulerTests {
    @Test func cronFiresAtItsMinuteWithAnInjectedClock() throws {
        // 12:04:59.5 local time in UTC+2: the job for 12:05 is due 0.5 s later, on the monotonic clock.
        var clock = FakeClock(wall: seconds(2026, 11, 29, 12, 4, 59), offset: 7200)
        clock.advance(ns: 500_000_000)
        var s = TimerScheduler()
        s.add(.init(id: 7, kind: .cron(try CronSpec(minute: 5, hour: 12, day: -1, month: -1, weekday: -1))), clock: clock.value)
        #expect(s.nextDeadline == clock.monotonic + 500_000_000)
        clock.advance(ns: 499_000_000)
        #expect(s.fire(clock: clock.value).isEmpty, "not a millisecond early")
        clock.advance(ns: 1_000_000)
        let fired = s.fire(clock: clock.value)
        #expect(fired.map(\.id) == [7])
        #expect(fired.first?.scheduledAt == clock.monotonic)
        // Next: the same minute tomorrow.
        #expect(s.nextDeadline == clock.monotonic + 86_400_000_000_000)
        // A second call within the same minute fires nothing more.
        clock.advance(ns: 30_000_000_000)
        #expect(s.fire(clock: clock.value).isEmpty)
    }

    @Test func cronMinuteFiresOnceEvenIfWallClockLagsMonotonic() throws {
        var clock = FakeClock(wall: seconds(2026, 1, 1, 0, 0, 30))
        var s = TimerScheduler()
        s.add(.init(id: 1, kind: .cron(try CronSpec(minute: -1, hour: -1, day: -1, month: -1, weekday: -1))), clock: clock.value)
        clock.advance(ns: 30_000_000_000)
        clock.unix -= 2_000_000  // NTP slewed the wall clock back 2 ms: it still reads 00:00:59.998
        #expect(s.fire(clock: clock.value).count == 1)
        // The next firing is for 00:02, not 00:01 again.
        #expect(s.nextDeadline! > clock.monotonic + 59_000_000_000)
    }

    @Test func intervalsDoNotDriftAndLateWakesSkipMissedRuns() {
        var clock = FakeClock(wall: 0)
        let start = clock.monotonic
        var s = TimerScheduler()
        s.add(.init(id: 1, kind: .every(nanoseconds: 100_000_000)), clock: clock.value)
        s.add(.init(id: 2, kind: .every(nanoseconds: 250_000_000)), clock: clock.value)
        clock.advance(ns: 103_000_000)  // woke 3 ms late
        #expect(s.fire(clock: clock.value) == [.init(id: 1, scheduledAt: start + 100_000_000)])
        #expect(s.nextDeadline == start + 200_000_000, "the next run keeps the original grid")
        clock.monotonic = start + 1_050_000_000  // a long stall: runs 2...10 missed
        let fired = s.fire(clock: clock.value)
        #expect(fired.map(\.id).sorted() == [1, 2], "each job fires once, not in a burst")
        #expect(s.nextDeadline == start + 1_100_000_000)
    }

    @Test func hugeIntervalsFromAWorkerNeverTrapTheMaster() {
        // What a worker may send after the fork, unchecked: the scheduler clamps and saturates.
        var clock = FakeClock(wall: 0)
        clock.monotonic = UInt64.max - 1_000
        var s = TimerScheduler()
        s.add(.init(id: 1, kind: .every(nanoseconds: UInt64.max)), clock: clock.value)
        s.add(.init(id: 2, kind: .every(nanoseconds: 18_446_744_073_709 * 1_000_000)), clock: clock.value)
        #expect(s.nextDeadline == UInt64.max)
        clock.monotonic = UInt64.max
        #expect(s.fire(clock: clock.value).count == 2, "due at the saturated deadline")
        #expect(s.nextDeadline == UInt64.max)
        // A late wake on a huge interval (the skip-missed-runs line) saturates too.
        var late = TimerScheduler()
        var c2 = FakeClock(wall: 0)
        late.add(.init(id: 3, kind: .every(nanoseconds: TimerInterval.maximumNanoseconds)), clock: c2.value)
        c2.monotonic = UInt64.max - 1
        #expect(late.fire(clock: c2.value).map(\.id) == [3])
        #expect(late.nextDeadline == UInt64.max)
    }

    @Test func intervalsAreBoundedBeforeAnyMultiplication() throws {
        #expect(try TimerInterval.nanoseconds(milliseconds: 250) == 250_000_000)
        #expect(try TimerInterval.nanoseconds(seconds: 366 * 86_400) == TimerInterval.maximumNanoseconds)
        #expect(try TimerInterval.nanoseconds(seconds: 0.5) == 500_000_000)
        for ms in [0, -1, 18_446_744_073_709, 18_446_744_073_710, Int.max, Int.min, 366 * 86_400_000 + 1] {
            #expect(throws: TimerIntervalError.self, "\(ms) ms") { try TimerInterval.nanoseconds(milliseconds: ms) }
        }
        for sec in [0, -5, Int.max, 366 * 86_400 + 1] {
            #expect(throws: TimerIntervalError.self, "\(sec) s") { try TimerInterval.nanoseconds(seconds: sec) }
        }
        for sec in [0, -1, Double.nan, Double.infinity, 1e300] {
            #expect(throws: TimerIntervalError.self, "\(sec) s") { try TimerInterval.nanoseconds(seconds: sec) }
        }
        for ns in [UInt64(0), UInt64.max, TimerInterval.maximumNanoseconds + 1] {
            #expect(throws: TimerIntervalError.self, "\(ns) ns") { try TimerInterval.nanoseconds(ns) }
        }
    }

    @Test func noJobsNoDeadline() {
        var s = TimerScheduler()
        #expect(s.nextDeadline == nil)
        #expect(s.fire(clock: FakeClock(wall: 0).value).isEmpty)
    }
}
