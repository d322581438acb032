import Testing
import WorkerCore

/// `AcceptShare.holdsItsThread`: a request holds its thread once it has run the patience (the time a worker
/// leaves connections to the others) and four times the mean request, clock values near the top of the range included.
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
        // An app whose requests take 150 ms on average: held from four times that on, not from the patience.
        #expect(!AcceptShare.holdsItsThread(startedAt: start, now: start + 599_999_999, meanRequestNanoseconds: 150_000_000))
        #expect(AcceptShare.holdsItsThread(startedAt: start, now: start + 600_000_000, meanRequestNanoseconds: 150_000_000))
        // A short mean leaves the patience; a mean near the top of the range saturates.
        #expect(AcceptShare.holdsItsThread(startedAt: start, now: start + p, meanRequestNanoseconds: 1_000))
        #expect(!AcceptShare.holdsItsThread(startedAt: 0, now: .max - 1, meanRequestNanoseconds: .max / 2))
    }
}
