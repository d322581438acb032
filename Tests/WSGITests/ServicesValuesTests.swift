// The services' values without processes: the record format on the channels, the full-queue report's rate,
// registrations made from many threads at once, and cache faults injected into one cache value only.
import Foundation
import Testing
import Posix
@testable import SWSGI

@Suite struct ServicesValuesTests {
    @Test func recordsRoundTripAndMalformedOnesAreRefused() {
        let records: [ServiceRecord] = [
            .signal(0, scheduledAt: 0), .signal(255, scheduledAt: .max), .message([]), .message([0, 1, 255]),
            .function(name: "thumbnail", payload: []), .function(name: String(repeating: "f", count: 255), payload: [7, 8]),
        ]
        for r in records { #expect(ServiceRecord(r.bytes) == r, "\(r)") }
        for bad: [UInt8] in [[], [0], [9, 1], [1, 3], [1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3], [3, 5, 65]] {
            #expect(ServiceRecord(bad) == nil, "\(bad)")
        }
    }

    @Test func aFullQueueIsReportedOncePerIntervalPerSignalWithTheCountSoFar() {
        var report = FullQueueReport()
        let second: UInt64 = 1_000_000_000
        #expect(report.skipped(signal: 1, target: .anyWorker, now: 1)?.contains("1 runs skipped") == true)
        #expect(report.skipped(signal: 1, target: .anyWorker, now: 5 * second) == nil)
        #expect(report.skipped(signal: 2, target: .mule(1), now: 5 * second)?.contains("signal 2 for mule1") == true)
        #expect(report.skipped(signal: 1, target: .anyWorker, now: 10 * second) == nil)
        #expect(report.skipped(signal: 1, target: .anyWorker, now: 10 * second + 1)?.contains("4 runs skipped") == true)
    }

    /// `Timers.every` from request threads: a free signal is chosen and taken under one lock, so two
    /// threads never get the same one (and the 257th is refused, never a silent replacement).
    @Test func threadsRegisteringAnonymousTimersNeverShareASignal() throws {
        let book = RegistrationBook(ServiceRegistrations())
        let taken = Collected()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<32 {
                if let s = try? book.register(signal: nil, target: .anyWorker, unique: false, handler: { _ in }, publish: nil) { taken.add(s) }
            }
        }
        #expect(taken.values.sorted() == Array(0...255))
        #expect(throws: ServicesError.self) { try book.register(signal: nil, target: .anyWorker, unique: false, handler: { _ in }, publish: nil) }
    }

    /// Crash injection reaches only the cache value it was given: the server's own value has none, and
    /// a simulated death there rolls back exactly what recovery after a SIGKILL would.
    @Test func injectedFaultsTouchOnlyTheCacheGivenThem() throws {
        let layout = CacheLayout(items: 8, blockSize: 64, keySize: 16)
        let mapping = try SharedMapping(byteCount: layout.totalBytes)
        let cache = SharedCache(name: "t", base: mapping.base, items: 8, blockSize: 64, keySize: 16)
        try cache.initialize()
        #expect(cache.faults == nil)
        let faults = CacheFaults(storesBeforeCrash: 1)
        _ = try cache.injecting(faults).set(Array("k".utf8), Array("v".utf8), expiresInSeconds: 0, replace: true)
        #expect(faults.storesBeforeCrash == 0 && !faults.crashed)
        #expect(try cache.get(Array("k".utf8)) == nil)
        #expect(try cache.checkConsistency() == nil)
        _ = try cache.set(Array("k".utf8), Array("v".utf8), expiresInSeconds: 0, replace: true)
        #expect(try cache.get(Array("k".utf8)) == Array("v".utf8))
    }
}

private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func add(_ v: Int) { lock.withLock { items.append(v) } }
    var values: [Int] { lock.withLock { items } }
}
