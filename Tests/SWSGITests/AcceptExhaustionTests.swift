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

        /// Connections the worker ended but lingers on (their clients neither read nor close) give their fds back
        /// when accept runs out of them, as nginx's lingering connections do: a flood of such clients must not keep
        /// a new client out for the 5 s they may linger (found by an attack: legitimate requests timed out for the
        /// whole flood with the worker at 256 of 256 fds).
        @Test(arguments: [1, 2]) func lingeringClosesGiveTheirFdsBackWhenAcceptRunsOut(threads: Int) throws {
            let port = try freeLocalPort()
            try withServer(["--processes", "1", "--threads", "\(threads)", "--app", "static:{dir}/www", "--max-fd", "48",
                            "--http-socket", "127.0.0.1:\(port)"],
                           setup: { dir in
                               try FileManager.default.createDirectory(atPath: dir.file("www"), withIntermediateDirectories: true)
                               try dir.write("www/mid.bin", bytes: [UInt8](repeating: 0x6D, count: 20_000))
                           }) { s throws in
                // Answers larger than the clients' tiny receive windows: unacknowledged bytes, so each close lingers.
                var flood: [Client] = []
                for _ in 0..<60 {
                    let c = try slowClient(port: port)
                    try c.send("GET /mid.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    flood.append(c)
                }
                #expect(s.waitForLog("GET /mid.bin 200", count: 30, timeout: 10), "the flood was answered:\n\(s.log)")
                let started = monotonicSeconds()
                let status = tcpGet(port: port, path: "/mid.bin", timeoutSeconds: 4)
                let waited = monotonicSeconds() - started
                // Served, or told to come back if the file found no fd free at that moment: never left waiting, and
                // never a 404 for a file that is there.
                let code = try? status.get()
                #expect(code == 200 || code == 503, "a new client is answered: \(status)")
                #expect(waited < 3, "answered after \(waited) s")
                withExtendedLifetime(flood) {}
            }
        }
    }
}
