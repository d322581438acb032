// Issue 17's fair share counts the connections each worker holds. A keep-alive connection that sends nothing
// more (a client done for now, nginx's pool keeping more connections than it uses) costs its worker no turn,
// yet it counted as much as one that asks all the time. Now a connection quiet for 0.5 s is left out of the
// held count (`IdleConnections`).
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct IdleConnectionShare {
        /// 24 keep-alive connections that sent one request and then nothing land on one worker (the other is
        /// held by a long request meanwhile). Then 8 clients loop requests: the worker holding the idle ones
        /// counts as full, so the other takes all 8 (or all but one) and serves them alone while this one idles:
        /// every active client waits twice its fair share, or those left on the worker with the idle ones are
        /// served three times as often as the others. Measured before: 8/0 (18 answers each in 3 s, one worker
        /// idle) and 6/2 (25 answers against 73); by hand, 15/1 of 16 clients (17 answers each in 6 s against 239).
        @Test func idleKeepAliveConnectionsDoNotPushTheActiveOnesOntoOneWorker() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--app", "sleep", "--stats", "{dir}/stats"], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(2).count == 2)
            let holder = try s.connect()
            try holder.send("GET /sleep/1.0?long HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try waitBusy(s, stats: dir.file("stats"), count: 1)
            var idle: [Client] = []
            for i in 0..<24 {
                let c = try s.connect()
                try c.send("GET /sleep/0?idle=\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                idle.append(c)
            }
            for c in idle { #expect(try c.readResponse(timeout: 10).status == 200) }
            #expect(try holder.readResponse(timeout: 10).status == 200)
            let (results, order) = ConnectionSpread.loopingClients(s, clients: 8, seconds: 3.0, requestSeconds: 0.02)
            var perWorker: [String: Int] = [:]
            for r in results { perWorker[r.worker ?? "none", default: 0] += 1 }
            let answered = results.map(\.answered)
            let report = "8 looping clients beside 24 idle keep-alive connections: looping clients per worker \(perWorker), "
                + "answers per client \(answered.sorted()), reconnects \(results.map(\.reconnects).reduce(0, +)), failures \(results.compactMap(\.failure)); order \(order)"
            do {
                // As `loopingKeepAliveClientsGetFairTurns`: each worker a quarter of the clients or more, and no client
                // answered more than 2.5 times as often as another.
                #expect(results.allSatisfy { $0.failure == nil } && perWorker.count == 2 && perWorker.values.allSatisfy { $0 >= 2 }
                        && answered.min()! > 0 && Double(answered.max()!) <= 2.5 * Double(answered.min()!), "\(report)")
            }
            withExtendedLifetime(idle) {}
        }
    }
}
