import Testing
import WorkerCore

/// Seeded random event sequences against the worker's pure core, with the invariants checked after every
/// step. A failure names its seed and the steps that led to it; the same seed replays it.
@Suite struct WorkerLifecycleModelTests {
    /// What the outside world can feed the core in its current state (requests start only once loaded,
    /// finish only when one is in hand; N request threads may hold several).
    static func nextEvent(_ w: WorkerLifecycle, _ r: inout Random) -> WorkerLifecycle.Event {
        var choices: [WorkerLifecycle.Event] = WorkerLifecycle.Signal.allCases.map { .signal($0) } + [.retireGraceOver, .connectionsClosed]
        // Stops are rarer than the rest, so sequences get long enough to say something.
        if r.below(4) != 0 { choices.removeAll { $0 == .signal(.int) || $0 == .signal(.quit) } }
        if w.mode == .starting { choices += [.appLoaded, .appLoaded] } else {
            choices += [.requestStarted, .requestStarted]
            if w.requestsInHand > 0 { choices += [.requestFinished, .requestFinished, .requestFinished] }
        }
        return choices[r.below(choices.count)]
    }

    /// Runs one seeded sequence; returns the first broken invariant with the steps so far.
    static func run(seed: UInt64, steps: Int) -> String? {
        var r = Random(state: seed)
        var w = WorkerLifecycle()
        var trace: [String] = []
        var readyTold = 0, termTold = 0
        var stopAsked = false      // INT/QUIT
        var drainOwed = false      // USR1/TERM seen after loading, drain not yet emitted
        var leaveAsked = false     // HUP/USR1/TERM seen
        var exited = false
        for _ in 0..<steps {
            let event = nextEvent(w, &r)
            let before = w
            let actions = w.handle(event)
            trace.append("\(event) -> \(actions)")
            func fail(_ why: String) -> String { "seed \(seed): \(why)\n" + trace.suffix(12).joined(separator: "\n") }
            if exited {
                if !actions.isEmpty { return fail("actions after exit") }
                continue
            }
            if case .signal(let s) = event {
                if s == .int || s == .quit { stopAsked = true } else {
                    leaveAsked = true
                    if (s == .usr1 || s == .term) && before.mode != .starting { drainOwed = true }
                }
            }
            if event == .appLoaded && before.mode == .starting && leaveAsked {
                // Signals kept while loading: USR1/TERM among them owe a drain now.
                drainOwed = drainOwed || w.toldTERM || w.drainPending || actions.contains(.drainListenQueue)
            }
            for a in actions {
                switch a {
                case .tell(.ready): readyTold += 1
                case .tell(.gotTERM): termTold += 1
                case .drainListenQueue:
                    if before.requestsInHand > 0 && event != .requestFinished { return fail("a drain nested in a request in hand") }
                    drainOwed = false
                case .exit(let code):
                    exited = true
                    if code != 0 { return fail("exit status \(code)") }
                    if !stopAsked {
                        // Leaving on its own: only once retiring, nothing in hand, no connection, no drain owed.
                        if !leaveAsked { return fail("exit without being asked") }
                        if w.requestsInHand > 0 || before.requestsInHand > 0 { return fail("exit with a request in hand") }
                        if event != .connectionsClosed { return fail("exit while connections may be open") }
                        if drainOwed || before.drainPending { return fail("exit before draining the listen queue") }
                    }
                case .stopAccepting:
                    // From serving only (kept signals apply at .appLoaded, once the worker serves).
                    if before.mode != .serving && !(event == .appLoaded && before.mode == .starting) {
                        return fail("stopAccepting from \(before.mode)")
                    }
                default: break
                }
            }
            if readyTold > 1 { return fail("ready told twice") }
            if termTold > 1 { return fail("TERM told twice") }
            if w.requestsInHand < 0 { return fail("negative requests in hand") }
            if before.retiring && w.mode == .serving { return fail("back to serving after retiring") }
            if leaveAsked && w.mode == .serving { return fail("still accepting after HUP/USR1/TERM") }
            if w.mode != .starting && readyTold != 1 && !stopAsked { return fail("loaded without telling the master") }
            if w.accepting && readyTold == 0 { return fail("accepting before ready") }
        }
        return nil
    }

    @Test func randomSequencesKeepTheInvariants() {
        let base: UInt64 = 0x5157_5347_4931_39  // fixed: CI replays the same sequences
        for i in 0..<3000 {
            if let failure = Self.run(seed: base &+ UInt64(i), steps: 60) {
                Issue.record("\(failure)")
                return
            }
        }
    }

    @Test func termWithARequestInHandFinishesItDrainsThenLeaves() {
        var w = WorkerLifecycle()
        #expect(w.handle(.appLoaded) == [.tell(.ready)])
        _ = w.handle(.requestStarted)
        #expect(w.handle(.signal(.term)) == [.tell(.gotTERM), .stopAccepting, .armRetireGrace])
        #expect(w.handle(.connectionsClosed) == [], "a request in hand holds the worker")
        #expect(w.handle(.signal(.term)) == [], "told once")
        #expect(w.handle(.requestFinished) == [.drainListenQueue])
        #expect(w.handle(.connectionsClosed) == [.exit(0)])
    }

    @Test func signalsDuringTheAppsImportAreKeptUntilItIsUp() {
        var w = WorkerLifecycle()
        #expect(w.handle(.signal(.term)) == [])
        #expect(w.handle(.connectionsClosed) == [], "not leaving before telling the master anything")
        #expect(w.handle(.appLoaded) == [.tell(.ready), .tell(.gotTERM), .drainListenQueue, .stopAccepting, .armRetireGrace])
        #expect(w.handle(.connectionsClosed) == [.exit(0)])
        var v = WorkerLifecycle()
        #expect(v.handle(.signal(.int)) == [.exit(0)], "INT is not kept: it means now")
    }

    @Test func hupRetiresWithoutDraining() {
        var w = WorkerLifecycle()
        _ = w.handle(.appLoaded)
        #expect(w.handle(.signal(.hup)) == [.stopAccepting, .armRetireGrace])
        #expect(w.handle(.retireGraceOver) == [.closeIdleConnections])
        #expect(w.handle(.connectionsClosed) == [.exit(0)])
        #expect(w.handle(.signal(.hup)) == [], "nothing after exit")
    }
}

/// The request's scope and the interim-response rule, by seeded random sequences and by example.
@Suite struct ExchangeModelTests {
    @Test func randomSequencesKeepTheInterimRule() {
        var r = Random(state: 0x1919)
        for seed in 0..<2000 {
            var e = Exchange(number: UInt64(seed + 1), expectContinue: r.below(2) == 0)
            let expect = e.interim == .owed
            var continues = 0, responseStarted = false, ended = false
            var trace: [String] = []
            for _ in 0..<12 {
                let event: Exchange.Event = [.bodyReadWanted, .responseBytesWritten, .ended][r.below(3)]
                let action = e.handle(event)
                trace.append("\(event) -> \(action)")
                let where_ = "seed \(seed) expect \(expect): \(trace)"
                if action == .sendContinue {
                    continues += 1
                    if !expect { Issue.record("100 Continue nobody asked for: \(where_)") }
                    if responseStarted { Issue.record("100 Continue after the final response started: \(where_)") }
                }
                if ended && action != .refuse && event != .ended { Issue.record("an ended request acted: \(where_)") }
                if ended && e.admits(UInt64(seed + 1)) { Issue.record("an ended request's objects admitted: \(where_)") }
                if event == .responseBytesWritten && !ended { responseStarted = true }
                if event == .ended { ended = true }
                if continues > 1 { Issue.record("two interim responses: \(where_)") }
            }
        }
    }

    @Test func continueOnlyBeforeTheResponseStarts() {
        var a = Exchange(number: 7, expectContinue: true)
        #expect(a.handle(.bodyReadWanted) == .sendContinue)
        #expect(a.handle(.bodyReadWanted) == .none)
        #expect(a.bodyFramingKnown)
        var b = Exchange(number: 8, expectContinue: true)
        #expect(b.handle(.responseBytesWritten) == .none)
        #expect(b.handle(.bodyReadWanted) == .none, "the final response started: no interim one")
        #expect(!b.bodyFramingKnown, "the client may never send the body: the connection closes after")
        #expect(b.admits(8) && !b.admits(7))
        _ = b.handle(.ended)
        #expect(!b.admits(8))
        #expect(b.handle(.responseBytesWritten) == .refuse)
    }
}
