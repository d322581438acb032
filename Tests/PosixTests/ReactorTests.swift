import Glibc
import Posix
import TestSupport
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

    /// A worker orders each batch of ready connections by when each was last served (`readableOrder`):
    /// the kernel's order is kept when it already agrees, and reversed keys reverse it.
    @Test func aBatchIsHandedOutInTheOwnersOrder() throws {
        var pipes: [(Int32, Int32)] = []
        for _ in 0..<4 {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            pipes.append((fds[0], fds[1]))
        }
        defer { for (r, w) in pipes { close(r); close(w) } }
        func batch(_ key: ((UInt64) -> UInt64)?) throws -> [UInt64] {
            let reactor = try Reactor(signals: [], reapChildren: false, readableOrder: key)
            for (i, (r, w)) in pipes.enumerated() {
                try reactor.watch(r, token: UInt64(i))
                var one: UInt8 = 1
                _ = write(w, &one, 1)
            }
            var tokens: [UInt64] = []
            for _ in pipes {
                if case .readable(let token, _) = try reactor.next() { tokens.append(token) }
            }
            for (r, _) in pipes {
                var byte: UInt8 = 0
                _ = read(r, &byte, 1)
            }
            return tokens
        }
        let kernel = try batch(nil)
        #expect(Set(kernel) == [0, 1, 2, 3])
        #expect(try batch { 100 - $0 } == [3, 2, 1, 0], "lowest key first")
        #expect(try batch { $0 } == [0, 1, 2, 3])
    }

    /// Model check of the ordering, seeded: batches of up to 20 ready pipes with random keys (ties, and some with
    /// no key, which keep their places) come out as a stable sort of the keyed ones into the keyed places.
    @Test func randomBatchesComeOutStablySortedByKey() throws {
        var pipes: [(Int32, Int32)] = []
        defer { for (r, w) in pipes { close(r); close(w) } }
        for _ in 0..<20 {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            pipes.append((fds[0], fds[1]))
        }
        for seed in UInt64(1)...60 {
            var rng = SplitMix64(seed: seed)
            let n = Int(rng.next() % 19) + 2
            let keys: [UInt64?] = (0..<n).map { _ in rng.next() % 5 == 0 ? nil : rng.next() % 4 }
            let reactor = try Reactor(signals: [], reapChildren: false, readableOrder: { keys[Int($0)] })
            for i in 0..<n {
                try reactor.watch(pipes[i].0, token: UInt64(i))
                var one: UInt8 = 1
                _ = write(pipes[i].1, &one, 1)
            }
            var got: [UInt64] = []
            for _ in 0..<n {
                if case .readable(let token, _) = try reactor.next() { got.append(token) }
            }
            for i in 0..<n {
                var byte: UInt8 = 0
                _ = read(pipes[i].0, &byte, 1)
            }
            // The kernel hands them out in the order they became ready: 0, 1, ... n-1.
            let keyed = (0..<n).filter { keys[$0] != nil }
            let sortedKeyed = keyed.sorted { (keys[$0]!, $0) < (keys[$1]!, $1) }
            var expected = (0..<n).map { UInt64($0) }
            for (place, token) in zip(keyed, sortedKeyed) { expected[place] = UInt64(token) }
            #expect(got == expected, "seed \(seed): keys \(keys)")
        }
    }
}

