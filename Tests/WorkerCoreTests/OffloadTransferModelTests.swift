import Testing
import WorkerCore

/// `OffloadTransfer` (the offload thread's transfer, `--offload-threads`) without sockets: seeded random
/// sequences of what sendfile, epoll and the clock can report, the invariants checked after every step, the
/// failing seed and steps printed.
@Suite struct OffloadTransferModelTests {
    /// What the edge can feed in this mode: a sendfile result only after a sendfile was asked for, readiness and
    /// the clock only while waiting; hang-ups and the mercy at any time (rarely).
    static func nextEvent(_ t: OffloadTransfer, now: inout Instant, _ r: inout Random) -> OffloadTransfer.Event {
        now += UInt64(r.below(400)) * 1_000_000
        if r.below(40) == 0 { return r.below(2) == 0 ? .hungUp : .mercyOver }
        switch t.mode {
        case .sending(_, let count):
            switch r.below(20) {
            case 0: return .endOfFile
            case 1: return .failed(call: "sendfile", errno: [32, 104, 5][r.below(3)])
            case 2...6: return .wouldBlock(now: now)
            default: return .sent(bytes: 1 + r.below(count), now: now)
            }
        case .waitingWritable:
            return r.below(6) == 0 ? .deadlinePassed(now: now) : .writable(now: now)
        case .lingering:
            switch r.below(8) {
            case 0: return .deadlinePassed(now: now)
            case 1: return .failed(call: "recv", errno: 104)
            case 2...4: return .readable
            default: return .drained(peerClosed: r.below(3) == 0)
            }
        case .finished:
            return .writable(now: now)
        }
    }

    static func run(seed: UInt64) -> String? {
        var r = Random(state: seed)
        var now: Instant = 1_000_000_000
        let offset = r.below(1 << 20), total = r.below(3 * OffloadTransfer.chunkBytes + 10)
        let stall: UInt64 = 1_000_000_000
        var t = OffloadTransfer(offset: offset, count: total, stallNanoseconds: stall, now: now)
        // Formatted only for a failure: building text at every step would make the run slow.
        var trace: [(OffloadTransfer.Event, OffloadTransfer.Action)] = []
        var lastProgress = now
        var closes = 0
        for _ in 0..<200 {
            let before = t
            let event = nextEvent(t, now: &now, &r)
            let action = t.handle(event)
            trace.append((event, action))
            func fail(_ why: String) -> String { "seed \(seed): \(why)\n" + trace.map { "\($0.0) -> \($0.1)" }.joined(separator: "\n") }
            if case .sent(let n, let at) = event, case .sending = before.mode, n > 0 { lastProgress = at }
            // Bytes only grow, never past the total.
            if t.sent < before.sent || t.sent > t.total { return fail("sent went from \(before.sent) to \(t.sent) of \(t.total)") }
            switch action {
            case .sendfile(let o, let c):
                // The next bytes, contiguous, at most one chunk, never past the end.
                if o != offset + t.sent { return fail("sendfile at \(o), expected \(offset + t.sent)") }
                if c <= 0 || c > OffloadTransfer.chunkBytes || t.sent + c > t.total { return fail("sendfile of \(c) bytes") }
            case .waitWritable(let until):
                // The stall deadline runs from the last progress, never from a wake-up without progress.
                if until != lastProgress + stall { return fail("deadline \(until), expected \(lastProgress + stall)") }
                if t.deadline != until { return fail("mode's deadline \(String(describing: t.deadline)) differs") }
            case .shutdownAndWaitReadable(let until):
                // Lingering starts only once every byte is queued, for at most the stall timeout.
                if t.sent != t.total { return fail("lingering with \(t.sent) of \(t.total)") }
                if until != now + min(stall, OffloadTransfer.lingerNanoseconds) || t.deadline != until { return fail("linger deadline \(until)") }
            case .drain:
                if case .lingering = before.mode {} else { return fail("drain outside lingering") }
            case .waitReadable(let until):
                if t.deadline != until { return fail("linger deadline \(until) differs from the mode's") }
            case .close(let outcome):
                closes += 1
                if (outcome == .complete) != (t.sent == t.total) { return fail("outcome \(outcome) with \(t.sent) of \(t.total)") }
                if case .stalled = outcome, now < lastProgress + stall { return fail("cut as stalled before its deadline") }
            case .none:
                break
            }
            // Finished is final: nothing more happens, and it closes exactly once.
            if case .finished = before.mode, action != .none { return fail("a finished transfer acted: \(action)") }
            if closes > 1 { return fail("closed twice") }
            if t.isFinished != (closes == 1) { return fail("finished \(t.isFinished) but closes \(closes)") }
        }
        return nil
    }

    @Test func randomSequencesKeepTheInvariants() {
        for seed in UInt64(1)...1000 {
            if let failure = Self.run(seed: seed) {
                Issue.record("\(failure)")
                return
            }
        }
    }

    /// The ordinary path: a chunk per writable event, a full socket waits, the last chunk completes.
    @Test func aWholeFileGoesOutInChunksAndCompletes() {
        let chunk = OffloadTransfer.chunkBytes
        var t = OffloadTransfer(offset: 10, count: chunk + 5, stallNanoseconds: 100, now: 0)
        #expect(t.handle(.writable(now: 1)) == .sendfile(offset: 10, count: chunk))
        #expect(t.handle(.wouldBlock(now: 2)) == .waitWritable(until: 100))
        #expect(t.handle(.writable(now: 50)) == .sendfile(offset: 10, count: chunk))
        #expect(t.handle(.sent(bytes: chunk, now: 60)) == .waitWritable(until: 160))
        #expect(t.handle(.writable(now: 61)) == .sendfile(offset: 10 + chunk, count: 5))
        #expect(t.handle(.sent(bytes: 5, now: 62)) == .shutdownAndWaitReadable(until: 162))
        #expect(t.handle(.readable) == .drain)
        #expect(t.handle(.drained(peerClosed: false)) == .waitReadable(until: 162))
        #expect(t.handle(.deadlinePassed(now: 161)) == OffloadTransfer.Action.none)
        #expect(t.handle(.readable) == .drain)
        #expect(t.handle(.drained(peerClosed: true)) == .close(.complete))
        #expect(t.handle(.mercyOver) == OffloadTransfer.Action.none)
    }

    /// A client that reads nothing is cut at the stall deadline, however often the socket wakes the thread.
    @Test func aClientThatReadsNothingIsCutAtTheStallDeadline() {
        var t = OffloadTransfer(offset: 0, count: 1000, stallNanoseconds: 100, now: 0)
        #expect(t.handle(.writable(now: 1)) == .sendfile(offset: 0, count: 1000))
        #expect(t.handle(.sent(bytes: 10, now: 5)) == .waitWritable(until: 105))
        #expect(t.handle(.writable(now: 50)) == .sendfile(offset: 10, count: 990))
        #expect(t.handle(.wouldBlock(now: 60)) == .waitWritable(until: 105))
        #expect(t.handle(.deadlinePassed(now: 104)) == OffloadTransfer.Action.none)
        #expect(t.handle(.deadlinePassed(now: 105)) == .close(.stalled(seconds: 100e-9)))
    }

    @Test func clientGoneAndOtherErrorsAreTold() {
        var gone = OffloadTransfer(offset: 0, count: 10, stallNanoseconds: 100, now: 0)
        _ = gone.handle(.writable(now: 0))
        #expect(gone.handle(.failed(call: "sendfile", errno: 104)) == .close(.clientGone(call: "sendfile", errno: 104)))
        var io = OffloadTransfer(offset: 0, count: 10, stallNanoseconds: 100, now: 0)
        _ = io.handle(.writable(now: 0))
        #expect(io.handle(.failed(call: "sendfile", errno: 5)) == .close(.failed(call: "sendfile", errno: 5)))
        var short = OffloadTransfer(offset: 0, count: 10, stallNanoseconds: 100, now: 0)
        _ = short.handle(.writable(now: 0))
        #expect(short.handle(.endOfFile) == .close(.fileEnded))
    }
}
