import Testing
import WorkerCore

@Suite struct RepeatedLines {
    @Test func sameKindIsCountedAndSummarised() {
        var f = RepeatedLineFilter(windowNanoseconds: 1_000, burst: 1)
        #expect(f.admit("cannot fork worker 1: EAGAIN", now: 0) == ["cannot fork worker 1: EAGAIN"])
        for i in 2...300 { #expect(f.admit("cannot fork worker \(i): EAGAIN", now: 10).isEmpty) }
        #expect(f.admit("a different line", now: 20) == ["a different line"])
        #expect(f.nextFlush == 1_000)
        let s = f.flush(now: 1_000)
        #expect(s.count == 1 && s[0].contains("299 similar lines") && s[0].contains("worker 300"), "\(s)")
        #expect(f.nextFlush == nil, "nothing pending: no wake-up needed")
        #expect(f.admit("cannot fork worker 9: EAGAIN", now: 1_500).isEmpty, "still limited in the fresh window")
        #expect(f.admit("cannot fork worker 9: EAGAIN", now: 3_000).count == 2, "summary, then the line")
    }

    @Test func kindsAreBounded() {
        var f = RepeatedLineFilter(windowNanoseconds: 1_000, maxKinds: 4, burst: 1)
        for i in 0..<100 { _ = f.admit("line \(String(repeating: "x", count: i))", now: UInt64(i)) }
        #expect(f.flush(now: 10_000).isEmpty)
    }

    @Test func aBurstOfAKindStaysVisible() {
        var f = RepeatedLineFilter(windowNanoseconds: 1_000, burst: 3)
        let written = (0..<5).flatMap { f.admit("reloading \($0) workers", now: UInt64($0)) }
        #expect(written.count == 3)
        #expect(f.flush(now: 2_000).first?.contains("2 similar lines") == true)
    }

    /// At exit, counts of windows still open go out (found by an attack: 14 workers killed at once, then TERM to the
    /// master within the second, logged 10 lines and no summary).
    @Test func flushAllTellsWhatIsStillCounted() {
        var f = RepeatedLineFilter(windowNanoseconds: 1_000_000_000, burst: 10)
        for i in 1...14 { _ = f.admit("worker \(i) (pid \(100 + i)) died (killed by SIGKILL); respawning", now: 10) }
        #expect(f.flush(now: 20).isEmpty, "the window has not ended")
        let out = f.flushAll(now: 30)
        #expect(out.count == 1 && out[0].contains("4 similar lines suppressed") && out[0].contains("worker 14"), "\(out)")
        #expect(f.flushAll(now: 40).isEmpty && f.nextFlush == nil)
    }
}
