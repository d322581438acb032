import ReloadCore
import Testing

/// Rebind mode: once the new generation is ready the path leads to it, and the reload signal waits
/// (at most `handoverNanoseconds`) until the old listener's queue is empty.
@Suite struct HandoverTests {
    func harness(handover: Double = 1) -> Harness {
        var h = Harness(graceful: 5, ready: 10)
        var config = h.machine.config
        config.handoverNanoseconds = UInt64(handover * 1e9)
        h.machine = ReloadSupervisor(config: config)
        return h
    }

    @Test func theReloadSignalWaitsForTheOldQueueToDrain() {
        var h = harness()
        h.startServing(pid: 100)
        h.beginReload(2, pid: 200)
        h.advance(0.05)
        let ready = h.send(.ready(generation: 2))
        #expect(ready.contains(.awaitQueueDrain(generation: 1)))
        #expect(signals(ready).isEmpty, "no signal before the old listener has handed over")
        #expect(h.machine.generation(1)?.state == .draining)
        h.advance(0.004)
        let drained = h.send(.queueDrained(generation: 1))
        #expect(signals(drained).map { $0.0 } == [15])
        #expect(signals(drained).map { $0.1 } == [100])
        #expect(h.machine.generation(1)?.killDeadline == h.now + 5 * nanosecondsPerSecond)
        // A late second report changes nothing.
        #expect(h.send(.queueDrained(generation: 1)).isEmpty)
    }

    @Test func aQueueThatNeverDrainsIsSignalledAtTheDeadline() {
        var h = harness(handover: 1)
        h.startServing(pid: 100)
        h.beginReload(2, pid: 200)
        h.send(.ready(generation: 2))
        let fired = h.fireDeadline()
        #expect(signals(fired).map { $0.1 } == [100])
        #expect(fired.contains { if case .log(let m) = $0 { m.contains("still had connections queued") } else { false } })
    }

    @Test func terminateDuringAHandoverSignalsAtOnce() {
        var h = harness()
        h.startServing(pid: 100)
        h.beginReload(2, pid: 200)
        h.send(.ready(generation: 2))
        let stop = h.send(.terminate(signal: 15))
        #expect(Set(signals(stop).map { $0.1 }) == [100, 200])
        #expect(h.machine.generations.allSatisfy { $0.handoverDeadline == nil })
    }

    @Test func withoutHandoverTheSignalGoesAtOnce() {
        var h = harness(handover: 0)
        h.startServing(pid: 100)
        h.beginReload(2, pid: 200)
        let ready = h.send(.ready(generation: 2))
        #expect(signals(ready).map { $0.1 } == [100])
        #expect(!ready.contains(.awaitQueueDrain(generation: 1)))
    }
}
