import Testing
import WorkerCore

/// `AcceptPause` under seeded random sequences of failed accepts, clock steps, resume checks and cancels, with
/// its promises checked after every step: the listeners stay out for exactly the pause after the last failure,
/// the pause ends once, at most one line per log interval, and every failure is logged or counted in a line.
@Suite struct AcceptPauseModelTests {
    @Test func failuresPauseTheListenersAndAreLoggedAtMostOncePerInterval() {
        for seed in UInt64(1)...300 {
            var random = Random(state: seed)
            var pause = AcceptPause()
            var now: UInt64 = 5_000_000_000
            var lastFailure: UInt64?
            var lastLine: UInt64?
            var failures = 0, accounted = 0
            var steps: [String] = []
            func fail(_ why: String) {
                Issue.record("seed \(seed): \(why); steps: \(steps.suffix(8))")
            }
            for _ in 0..<200 {
                switch random.below(4) {
                case 0:
                    let d = pause.failed(now: now)
                    steps.append("failed@\(now)")
                    failures += 1
                    lastFailure = now
                    if d.resumeAt != now + AcceptPause.pauseNanoseconds { fail("resumes at \(d.resumeAt), not a pause after the failure") }
                    if d.log {
                        if let l = lastLine, now < l + AcceptPause.logIntervalNanoseconds { fail("two lines within the log interval") }
                        lastLine = now
                        accounted += 1 + d.alsoFailed
                    } else if d.alsoFailed != 0 {
                        fail("a count without a line")
                    }
                case 1:
                    now += UInt64(random.below(300)) * 1_000_000
                    steps.append("clock \(now)")
                case 2:
                    let due = pause.resumeDue(now: now)
                    steps.append("resumeDue@\(now) = \(due)")
                    if let f = lastFailure {
                        let expected = now >= f + AcceptPause.pauseNanoseconds
                        if due != expected { fail("resumeDue \(due) \(now - f) ns after the failure") }
                        if due { lastFailure = nil }
                    } else if due {
                        fail("a resume without a pause")
                    }
                default:
                    if random.below(8) == 0 {
                        pause.cancel()
                        steps.append("cancel")
                        lastFailure = nil
                    }
                }
                if (pause.resumeAt != nil) != (lastFailure != nil) { fail("paused \(pause.resumeAt != nil), expected \(lastFailure != nil)") }
            }
            // The failures not yet in a line come with the next one.
            now += AcceptPause.logIntervalNanoseconds
            let last = pause.failed(now: now)
            failures += 1
            #expect(last.log, "seed \(seed): a failure after a whole interval is logged")
            accounted += 1 + last.alsoFailed
            #expect(accounted == failures, "seed \(seed): \(failures) failures, \(accounted) logged or counted")
        }
    }
}
