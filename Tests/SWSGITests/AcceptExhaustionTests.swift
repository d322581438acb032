import Foundation
import Glibc
import Testing

/// accept(2) failing for want of fds (EMFILE at the worker's RLIMIT_NOFILE, ENFILE system-wide). The listener
/// stays readable, so a worker that only returned from its accept (nothing logged) was woken again at once:
/// a busy loop at 65% of a core, silent, for as long as the fd table stayed full.
extension SWSGIIntegration {
    @Suite struct AcceptExhaustion {
        @Test(arguments: [1, 2]) func aFullFdTableNeitherSpinsNorStaysSilent(threads: Int) throws {
            try withServer(["--processes", "1", "--threads", "\(threads)", "--app", "hello", "--max-fd", "48"]) { s throws in
                let worker = try #require(s.waitWorkers(1).first)
                // More connections than the worker has fds left: the rest wait in the listen queue.
                var clients: [Client] = []
                for _ in 0..<80 { clients.append(try s.connect()) }
                #expect(s.waitForLog("Too many open files", timeout: 5), "the failure is logged:\n\(s.log)")
                let before = try #require(cpuTicks(worker))
                usleep(1_000_000)
                let after = try #require(cpuTicks(worker))
                #expect(after - before < 20, "the worker used \(after - before) ticks of CPU in 1 s with its fd table full")
                // One line per pause at most: not a line per wake-up.
                #expect(s.logLines.filter { $0.contains("Too many open files") }.count <= 4, "\(s.logLines.suffix(5))")
                // fds free again: the connections still queued are taken and served.
                for c in clients.prefix(60) { c.close() }
                clients.removeFirst(60)
                let r = try s.get("/after", timeout: 5)
                #expect(r.status == 200)
                withExtendedLifetime(clients) {}
            }
        }
    }
}
