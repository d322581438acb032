import Testing
import WorkerCore

/// `LingeringClose` (a worker's connections closed in stages) without sockets: seeded random sequences of what
/// the worker's loop can report (connections ended with or without unacknowledged bytes, input, the client's
/// close, failures, the clock, the worker retiring), checked after every step against a model of which fds
/// linger until when. The failing seed and its steps are printed.
@Suite struct LingeringCloseModelTests {
    /// What the test knows each lingering fd is owed.
    struct Model {
        /// Lingering fds and the deadline each began with.
        var deadlines: [Int32: Instant] = [:]
        var cutAt: Instant?
        /// fds whose drain was asked for and not fed back yet.
        var draining: Set<Int32> = []
        /// Connections that began lingering, and closes of lingering connections: equal at the end.
        var began = 0
        var lingerCloses = 0

        func due(_ fd: Int32) -> Instant { min(deadlines[fd]!, cutAt ?? .max) }
        var nearest: Instant? { deadlines.keys.map(due).min() }
    }

    static let timeout = LingeringClose.timeoutNanoseconds

    static func run(seed: UInt64) -> String? {
        var r = Random(state: seed)
        var now: Instant = 1_000_000_000
        var l = LingeringClose()
        var m = Model()
        let fds = Int32(1 + r.below(6))
        var trace: [(LingeringClose.Event, [LingeringClose.Action])] = []
        for step in 0..<300 {
            // Mostly small steps, sometimes past a whole timeout.
            now += r.below(10) == 0 ? timeout / 2 + UInt64(r.below(4)) * timeout / 4 : UInt64(r.below(300)) * 1_000_000
            let fd = Int32(r.below(Int(fds)))
            let event: LingeringClose.Event
            switch r.below(12) {
            case 0, 1, 2:
                // Only an open connection can end: an fd that lingers is still open, so its number is not reused.
                guard !l.lingers(fd) else { continue }
                event = .ending(fd: fd, unacknowledgedBytes: r.below(3) == 0 ? 0 : 1 + r.below(1 << 20), now: now)
            case 3, 4:
                event = .readable(fd: fd)
            case 5, 6:
                // A drain's result comes back only for a drain asked for.
                guard let d = m.draining.pick(&r) else { continue }
                event = .drained(fd: d, clientClosed: r.below(3) == 0)
            case 7:
                event = r.below(4) == 0 ? .fdsExhausted : .failed(fd: fd)
            case 8:
                guard m.cutAt == nil || r.below(4) == 0 else { continue }
                event = .retiring(cutAt: now + UInt64(r.below(8)) * timeout / 4, now: now)
            default:
                // The timer: mostly at the nearest deadline, as the loop sets it; sometimes early or late.
                if let n = l.nearestDeadline, r.below(2) == 0 { now = max(now, n) }
                event = .clock(now: now)
            }
            let before = m
            let actions = l.handle(event)
            trace.append((event, actions))
            func fail(_ why: String) -> String {
                "seed \(seed) step \(step): \(why)\n" + trace.suffix(16).map { "\($0.0) -> \($0.1)" }.joined(separator: "\n")
            }
            // The model's view of the event.
            var closes: Set<Int32> = []
            for a in actions {
                switch a {
                case .close(let c):
                    if closes.contains(c) { return fail("closed \(c) twice in one step") }
                    closes.insert(c)
                case .drain(let d):
                    guard case .readable(d) = event, before.deadlines[d] != nil else { return fail("drain of \(d) without its readiness") }
                    m.draining.insert(d)
                case .shutdownAndWatch(let s):
                    guard case .ending(s, let bytes, let at) = event, bytes > 0 else { return fail("shutdown of \(s) outside its ending") }
                    if let cut = before.cutAt, at >= cut { return fail("lingering \(s) past the cut") }
                    m.deadlines[s] = at + timeout
                    m.began += 1
                }
            }
            if case .drained(let d, _) = event { m.draining.remove(d) }
            // Which fds may close, and which must.
            var allowed: Set<Int32> = [], required: Set<Int32> = []
            switch event {
            case .ending(let e, let bytes, let at):
                if bytes == 0 || (before.cutAt.map { at >= $0 } ?? false) { allowed = [e]; required = [e] }
            case .failed(let f):
                if before.deadlines[f] != nil { allowed = [f]; required = [f] }
            case .drained(let d, let clientClosed):
                if clientClosed && before.deadlines[d] != nil { allowed = [d]; required = [d] }
            case .clock(let at), .retiring(_, let at):
                if case .retiring(let cut, _) = event { m.cutAt = min(m.cutAt ?? .max, cut) }
                let due = Set(before.deadlines.keys.filter { m.due($0) <= at })
                allowed = due
                required = due
            case .fdsExhausted:
                allowed = Set(before.deadlines.keys)
                required = allowed
            case .readable:
                break
            }
            if !closes.isSubset(of: allowed) { return fail("closed \(closes.subtracting(allowed).sorted()) early") }
            if !required.isSubset(of: closes) { return fail("left \(required.subtracting(closes).sorted()) open") }
            for c in closes {
                if before.deadlines[c] != nil { m.lingerCloses += 1 }
                m.deadlines[c] = nil
                m.draining.remove(c)
            }
            // The value agrees with the model.
            if l.count != m.deadlines.count || l.isEmpty != m.deadlines.isEmpty { return fail("count \(l.count), model \(m.deadlines.count)") }
            for f in 0..<fds where l.lingers(f) != (m.deadlines[f] != nil) { return fail("lingers(\(f)) is \(l.lingers(f))") }
            if l.nearestDeadline != m.nearest { return fail("nearest \(String(describing: l.nearestDeadline)), model \(String(describing: m.nearest))") }
            if l.cutAt != m.cutAt { return fail("cut \(String(describing: l.cutAt)), model \(String(describing: m.cutAt))") }
            // Nothing lingers past its deadline once the clock has said so.
            switch event {
            case .clock(let at), .retiring(_, let at):
                if let n = l.nearestDeadline, n <= at { return fail("still lingering past \(n) at \(at)") }
            default:
                break
            }
        }
        // The end: every connection that lingered is closed exactly once, at the latest at its deadline.
        m.lingerCloses += l.handle(.clock(now: now + timeout)).count
        if !l.isEmpty || l.nearestDeadline != nil { return "seed \(seed): \(l.count) still lingering after every deadline" }
        if m.lingerCloses != m.began { return "seed \(seed): \(m.began) lingered, \(m.lingerCloses) closed" }
        return nil
    }

    @Test func randomSequencesKeepTheInvariants() {
        for seed in UInt64(1)...2000 {
            if let failure = Self.run(seed: seed) {
                Issue.record("\(failure)")
                return
            }
        }
    }

    /// A connection whose bytes the client has all acknowledged (or a Unix socket's) closes at once.
    @Test func nothingUnacknowledgedClosesAtOnce() {
        var l = LingeringClose()
        #expect(l.handle(.ending(fd: 7, unacknowledgedBytes: 0, now: 10)) == [.close(fd: 7)])
        #expect(l.isEmpty && l.nearestDeadline == nil)
    }

    /// The ordinary path: shut down, input read and dropped while it comes, closed at the client's close.
    @Test func inputIsDroppedUntilTheClientCloses() {
        var l = LingeringClose()
        #expect(l.handle(.ending(fd: 7, unacknowledgedBytes: 100, now: 10)) == [.shutdownAndWatch(fd: 7)])
        #expect(l.nearestDeadline == 10 + LingeringClose.timeoutNanoseconds)
        #expect(l.handle(.readable(fd: 7)) == [.drain(fd: 7)])
        #expect(l.handle(.drained(fd: 7, clientClosed: false)) == [])
        #expect(l.handle(.clock(now: 11)) == [])
        #expect(l.handle(.readable(fd: 7)) == [.drain(fd: 7)])
        #expect(l.handle(.drained(fd: 7, clientClosed: true)) == [.close(fd: 7)])
        #expect(l.isEmpty && l.nearestDeadline == nil)
        // A late report about the closed fd does nothing.
        #expect(l.handle(.readable(fd: 7)) == [])
    }

    /// A client that never closes is let go at the deadline, oldest first; a retiring worker's cut comes sooner.
    @Test func deadlinesAndTheRetiringCut() {
        let t = LingeringClose.timeoutNanoseconds
        var l = LingeringClose()
        _ = l.handle(.ending(fd: 3, unacknowledgedBytes: 1, now: 0))
        _ = l.handle(.ending(fd: 4, unacknowledgedBytes: 1, now: 100))
        #expect(l.handle(.clock(now: t - 1)) == [])
        #expect(l.handle(.clock(now: t)) == [.close(fd: 3)])
        #expect(l.nearestDeadline == t + 100)
        _ = l.handle(.ending(fd: 5, unacknowledgedBytes: 1, now: t + 50))
        #expect(l.handle(.retiring(cutAt: t + 80, now: t + 60)) == [])
        #expect(l.nearestDeadline == t + 80)
        #expect(l.handle(.clock(now: t + 80)) == [.close(fd: 4), .close(fd: 5)])
        // Past the cut nothing lingers: a connection ended now closes at once.
        #expect(l.handle(.ending(fd: 6, unacknowledgedBytes: 1, now: t + 90)) == [.close(fd: 6)])
        #expect(l.isEmpty)
    }
}

extension Set {
    /// A member picked by the model's seeded source (sorted first: a Set's order differs between runs).
    func pick(_ r: inout Random) -> Element? where Element: Comparable {
        guard !isEmpty else { return nil }
        return sorted()[r.below(count)]
    }
}
