import Testing
import WorkerCore

/// `AcceptShare.holdsItsThread`: a request holds its thread once it has run the patience (the time a worker
/// leaves connections to the others) or longer, clock values near the top of the range included.
@Suite struct AcceptShareHeldTests {
    @Test func aRequestHoldsItsThreadFromThePatienceOn() {
        let p = AcceptShare.patienceNanoseconds
        let start: UInt64 = 7_000_000_000
        #expect(!AcceptShare.holdsItsThread(startedAt: start, now: start))
        #expect(!AcceptShare.holdsItsThread(startedAt: start, now: start + p - 1))
        #expect(AcceptShare.holdsItsThread(startedAt: start, now: start + p))
        #expect(AcceptShare.holdsItsThread(startedAt: 0, now: p))
        // A start stamped after the reader's clock (another process read it a moment earlier) holds nothing.
        #expect(!AcceptShare.holdsItsThread(startedAt: start + 5, now: start))
        #expect(!AcceptShare.holdsItsThread(startedAt: .max - 1, now: .max - 1))
    }
}
