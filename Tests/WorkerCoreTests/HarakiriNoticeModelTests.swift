import Testing
import WorkerCore

/// `HarakiriNotice` against a model of the master's harakiri (WorkerPool's rules: fire at the nearest deadline
/// unless the queue threshold holds it, recheck every 20 ms, SIGKILL at once or after the grace) and of request
/// threads starting and ending at random. Seeded sequences, invariants after every step, the failing seed and
/// trace printed.
@Suite struct HarakiriNoticeModelTests {
    static let harakiri: UInt64 = 1_000_000_000
    static let ms: UInt64 = 1_000_000

    struct Request {
        var deadline: Instant
        var answered: Bool
        /// Stuck: only the master's graceful signal (or nothing) ends it.
        var stuck: Bool
    }

    /// A failure (the seed and trace), or whether the run ended in a kill with requests in flight.
    static func run(seed: UInt64) -> (failure: String?, killedBusy: Bool) {
        var killedBusy = false
        let failure = run(seed: seed, killedBusy: &killedBusy)
        return (failure, killedBusy)
    }

    static func run(seed: UInt64, killedBusy: inout Bool) -> String? {
        var r = Random(state: seed)
        let grace: UInt64 = [0, 0, 1_000_000_000, 2_000_000_000][r.below(4)]
        let mayBeHeld = r.below(3) == 0
        let config = HarakiriNotice.Config(graceNanoseconds: grace, mayBeHeld: mayBeHeld)
        var notice = HarakiriNotice(config)
        let threadCount = 1 + r.below(4)
        var threads: [Request?] = Array(repeating: nil, count: threadCount)
        var now: Instant = 5_000_000_000
        var fired = false
        var killAt: Instant?
        var told: Instant? = nil
        var toldOnce = false
        var trace: [String] = ["grace \(grace / ms) ms, mayBeHeld \(mayBeHeld), \(threadCount) threads"]
        func fail(_ why: String) -> String { "seed \(seed): \(why)\n" + trace.joined(separator: "\n") }

        func nearest() -> Instant? { threads.compactMap { $0?.deadline }.min() }
        func feed(_ e: HarakiriNotice.Event) -> String? {
            let actions = notice.handle(e, now: now)
            trace.append("\(now / ms) ms: \(e) -> \(actions) mode \(notice.mode)")
            for a in actions {
                switch a {
                case .armLook:
                    break
                case .answerAll(let k):
                    // Only when a kill is coming: the master fired (grace), or the deadline is within the margin.
                    if grace > 0 && !fired { return "answered before the master fired" }
                    if grace == 0 {
                        if mayBeHeld { return "answered though a held harakiri's kill time cannot be known" }
                        guard let d = nearest(), now + config.marginNanoseconds >= d else { return "answered with no deadline within the margin" }
                    }
                    if grace == 0, k != nearest() { return "kill expected at \(k), the deadline is \(String(describing: nearest()))" }
                    for i in threads.indices { threads[i]?.answered = true }
                }
            }
            // The timer is armed exactly where the core says, and disarmed when nothing runs.
            if notice.armed != notice.lookTime() { return "armed \(String(describing: notice.armed)) but due \(String(describing: notice.lookTime()))" }
            if nearest() == nil, notice.mode == .calm, notice.armed != nil { return "a look armed while no request runs: a wake-up when idle" }
            return nil
        }

        for _ in 0..<400 {
            now += UInt64(1 + r.below(10)) * ms
            // Requests start and end (a stuck one ends only after the graceful signal, if ever).
            let i = r.below(threadCount)
            if threads[i] == nil {
                if r.below(4) == 0 {
                    threads[i] = Request(deadline: now + harakiri, answered: notice.answersNewRequests, stuck: r.below(3) == 0)
                }
            } else if let q = threads[i], r.below(q.stuck ? (fired && grace > 0 ? 30 : 100_000) : 60) == 0 {
                threads[i] = nil
            }
            if !toldOnce || nearest() != told {
                toldOnce = true
                told = nearest()
                if let why = feed(.nearestDeadline(nearest())) { return fail(why) }
            }
            // The master: its timer fires at the nearest deadline; a held harakiri is looked at every 20 ms.
            if !fired, let d = nearest(), d <= now {
                if mayBeHeld && r.below(4) != 0 {
                    // held this time
                } else {
                    fired = true
                    killAt = now + grace
                    trace.append("\(now / ms) ms: master fires, kill at \((now + grace) / ms) ms")
                }
            }
            if let k = killAt, now >= k {
                // The kill: every request still in the worker must have had its answer.
                killedBusy = !(grace == 0 && mayBeHeld) && nearest() != nil
                if !(grace == 0 && mayBeHeld), let lost = threads.firstIndex(where: { $0 != nil && !$0!.answered }) {
                    return fail("killed at \(now / ms) ms with thread \(lost)'s request unanswered")
                }
                return nil
            }
            // A worker whose harakiri fired with a grace retires: it exits once nothing runs.
            if fired && grace > 0 && nearest() == nil { return nil }
            // The look timer (late by up to the step: under the margin).
            if let at = notice.armed, now >= at {
                if let why = feed(.lookDue(fired: fired)) { return fail(why) }
            }
        }
        return nil
    }

    @Test func noRequestIsLeftUnansweredAtTheKill() {
        var kills = 0
        for seed in UInt64(1)...2000 {
            let (failure, killedBusy) = Self.run(seed: seed)
            if let failure {
                Issue.record(Comment(rawValue: failure))
                return
            }
            if killedBusy { kills += 1 }
        }
        // The sequences reach the case that matters often: a kill with requests in the worker.
        #expect(kills > 200, "only \(kills) runs ended in a kill with requests in flight")
    }

    /// The plain cases, spelled out.
    @Test func withoutGraceTheAnswerComesAMarginBeforeTheDeadline() {
        var n = HarakiriNotice(.init(graceNanoseconds: 0, mayBeHeld: false))
        #expect(n.handle(.nearestDeadline(10_000 * Self.ms), now: 9_000 * Self.ms) == [.armLook(at: 9_950 * Self.ms)])
        #expect(n.handle(.lookDue(fired: false), now: 9_950 * Self.ms) == [.answerAll(killAt: 10_000 * Self.ms), .armLook(at: nil)])
        #expect(n.answersNewRequests)
        // The request ended before its deadline: no kill comes, requests are served again.
        #expect(n.handle(.nearestDeadline(nil), now: 9_990 * Self.ms) == [])
        #expect(n.mode == .calm && !n.answersNewRequests)
        // A held harakiri without a grace: the kill time cannot be known, nothing is armed.
        var held = HarakiriNotice(.init(graceNanoseconds: 0, mayBeHeld: true))
        #expect(held.handle(.nearestDeadline(10_000 * Self.ms), now: 9_000 * Self.ms) == [])
    }

    @Test func withGraceTheAnswerWaitsForTheFireAndTheGrace() {
        var n = HarakiriNotice(.init(graceNanoseconds: 2_000 * Self.ms, mayBeHeld: true))
        #expect(n.handle(.nearestDeadline(10_000 * Self.ms), now: 9_000 * Self.ms) == [.armLook(at: 11_950 * Self.ms)])
        // Interrupted by the graceful signal after its deadline: the kill is still a grace after the deadline.
        #expect(n.handle(.nearestDeadline(10_500 * Self.ms), now: 10_100 * Self.ms) == [])
        #expect(n.mode == .overdue(since: 10_000 * Self.ms))
        #expect(n.handle(.lookDue(fired: true), now: 11_950 * Self.ms) == [.answerAll(killAt: 12_000 * Self.ms), .armLook(at: nil)])
        // Held by the queue threshold: looked at every 20 ms until it fires.
        var h = HarakiriNotice(.init(graceNanoseconds: 1_000 * Self.ms, mayBeHeld: true))
        _ = h.handle(.nearestDeadline(10_000 * Self.ms), now: 9_000 * Self.ms)
        #expect(h.handle(.lookDue(fired: false), now: 10_950 * Self.ms) == [.armLook(at: 10_970 * Self.ms)])
        #expect(h.handle(.lookDue(fired: true), now: 10_970 * Self.ms) == [.armLook(at: 11_900 * Self.ms)])
        #expect(h.handle(.lookDue(fired: true), now: 11_900 * Self.ms) == [.answerAll(killAt: 11_950 * Self.ms), .armLook(at: nil)])
    }
}
