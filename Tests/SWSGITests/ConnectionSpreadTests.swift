// Issue 19's speed work: keep-alive connections must spread over the workers. With EPOLLEXCLUSIVE the kernel
// wakes the first idle worker in the listener's wait queue, always the same one, so a pool that grows one
// connection at a time (nginx's upstream keepalive, a load generator) ended up on one worker while the
// others idled: half the throughput on 2 cores.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct ConnectionSpread {
        @Test func keepAliveConnectionsOpenedOneAfterAnotherSpreadOverTheWorkers() throws {
            try withServer(["--processes", "2", "--app", "hello"]) { s throws in
                #expect(s.waitWorkers(2).count == 2)
                // Each connection gets its answer before the next one opens, and all stay open (idle keep-alive).
                var clients: [Client] = []
                for i in 0..<12 {
                    let c = try s.connect()
                    try c.send("GET /spread/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                    #expect(try c.readResponse(timeout: 10).status == 200)
                    clients.append(c)
                }
                // Each worker logs after it answered: wait for all twelve lines, whichever worker wrote them.
                #expect(s.waitForLog("GET /spread/", count: 12))
                // The access log names the worker of each request.
                var byWorker: [String: Int] = [:]
                for line in s.logLines where line.contains("GET /spread/") {
                    guard let open = line.range(of: "[pid "), let close = line[open.upperBound...].firstIndex(of: "]") else { continue }
                    byWorker[String(line[open.upperBound..<close]), default: 0] += 1
                }
                #expect(byWorker.values.reduce(0, +) == 12, "every request logged: \(byWorker)")
                #expect(byWorker.count == 2 && byWorker.values.allSatisfy { $0 >= 4 },
                        "12 connections over 2 idle workers, each should hold about half: \(byWorker)")
                withExtendedLifetime(clients) {}
            }
        }
    }
}
