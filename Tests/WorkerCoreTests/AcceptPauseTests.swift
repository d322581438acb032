import Testing
import WorkerCore

@Suite struct AcceptPauseTests {
    @Test func exhaustionPausesAndLogsAtMostOneLinePerPeriod() {
        var p = AcceptPause()
        let t: UInt64 = 10_000_000_000, ms: UInt64 = 1_000_000
        // First failure for want of fds: a pause, logged at once.
        let first = p.failed(exhausted: true, now: t)
        #expect(first.pauseUntil == t + AcceptPause.pauseNanoseconds && first.logWithUnlogged == 0)
        let early = p.resumes(now: t + 499 * ms)
        #expect(!early && p.until != nil)
        let due = p.resumes(now: t + 500 * ms)
        #expect(due && p.until == nil)
        let again = p.resumes(now: t + 600 * ms)
        #expect(!again)
        // Again and again within the log period: paused each time, silent, counted.
        for k in 1...5 {
            let d = p.failed(exhausted: true, now: t + UInt64(k) * 600 * ms)
            #expect(d.pauseUntil != nil && d.logWithUnlogged == nil)
            let over = p.resumes(now: t + UInt64(k) * 600 * ms + AcceptPause.pauseNanoseconds)
            #expect(over)
        }
        // A failure that is no exhaustion: no pause; past the period it is logged with the count.
        let later = p.failed(exhausted: false, now: t + AcceptPause.logEveryNanoseconds)
        #expect(later.pauseUntil == nil && later.logWithUnlogged == 5 && p.until == nil)
    }
}
