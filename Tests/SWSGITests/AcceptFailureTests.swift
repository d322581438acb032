// accept(2) failing while a connection waits (no descriptor left: EMFILE) leaves the listener readable. A worker
// that watches it level-triggered and only returns on the failure is woken again at once, forever.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct AcceptFailure {
        /// A worker out of descriptors (--max-fd) with connections still queued: it must not spin (before: 10,000
        /// failed accept4 calls a second at full CPU, and nothing in the log), it says why it stops accepting, and
        /// once descriptors are free again it accepts and answers the connections that waited.
        @Test(arguments: [1, 2]) func aWorkerOutOfDescriptorsDoesNotSpinAndAcceptsAgainOnceOneIsFree(threads: Int) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "1", "--threads", "\(threads)", "--app", "hello", "--max-fd", "48"], dir: dir)
            defer { s.stop() }
            let worker = try #require(s.waitWorkers(1).first)
            // Silent connections until the worker's table is full; the last ones stay in the listen queue.
            var idle: [Client] = []
            for _ in 0..<60 { idle.append(try s.connect()) }
            #expect(waitUntil(10) { (openFDCount(worker) ?? 0) >= 47 }, "the worker fills its fd table")
            usleep(300_000)
            let before = cpuTicks(worker) ?? 0
            usleep(1_000_000)
            let used = (cpuTicks(worker) ?? .max) - before
            #expect(used <= 10, "a worker whose accept fails with EMFILE used \(used) CPU ticks (of 100) in 1 s")
            #expect(s.waitForLog("accept4", timeout: 2), "the failure is logged:\n\(s.log)")
            // Descriptors free again: the connections that waited in the queue are answered.
            idle.removeAll()
            #expect((try? s.get("/after", timeout: 5))?.status == 200, "the worker accepts again:\n\(s.log)")
            #expect(isAlive(worker), "the same worker serves on")
        }
    }
}
