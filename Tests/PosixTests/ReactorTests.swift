import Glibc
import Posix
import Testing

/// The reactor the worker now runs on: signals taken without waiting, deadlines re-armed only when they move.
@Suite(.serialized) struct ReactorTests {
    @Test func takeSignalsReturnsWhatArrivedWithoutWaiting() throws {
        let reactor = try Reactor(signals: [SIGUSR2], reapChildren: false)
        #expect(try reactor.takeSignals().isEmpty)
        raise(SIGUSR2)  // to this thread, where the reactor blocked it
        let taken = try reactor.takeSignals().map(\.signal)
        #expect(taken == [SIGUSR2])
        #expect(try reactor.takeSignals().isEmpty, "taken once")
        try SignalSet([SIGUSR2]).unblock()
    }

    @Test func aDeadlineSetAgainAfterItFiredFiresAgain() throws {
        let reactor = try Reactor(signals: [], reapChildren: false)
        let at = monotonicNanoseconds() + 5_000_000
        try reactor.setDeadline(at)
        try reactor.setDeadline(at)  // the same: no re-arm needed
        #expect(try reactor.next() == .deadline)
        // Fired: the same instant (now in the past) must arm the timer again, not be skipped as unchanged.
        try reactor.setDeadline(at)
        #expect(try reactor.next() == .deadline)
        try reactor.setDeadline(nil)
    }
}
