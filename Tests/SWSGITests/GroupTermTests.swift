import Foundation
import Glibc
import Testing

/// SIGTERM to the whole process group (systemd's KillMode=control-group, timeout(1), supervisord's
/// stopasgroup): a worker's TERM means what the master's means, and the log tells the two apart.
extension SWSGIIntegration {
    @Suite struct GroupTerm {
        /// Starts `args` in its own process group with slow requests in flight and more queued.
        func withSlowRequests(_ args: [String], _ body: (Server, [Client]) throws -> Void) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--app", "sleep", "--stats", "{dir}/stats"] + args, dir: dir, newProcessGroup: true)
            defer { s.stop() }
            _ = s.waitWorkers(2)
            var clients: [Client] = []
            for _ in 0..<2 {
                let c = try s.connect()
                try c.send(httpGet("/sleep/1"))
                clients.append(c)
            }
            _ = try waitBusy(s, stats: dir.file("stats"), count: 2)
            for i in 0..<3 {
                let c = try s.connect()
                try c.send(httpGet("/sleep/0.0\(i)"))
                clients.append(c)
            }
            #expect(waitUntil(3) { ((try? readStats(dir.file("stats")))?["listen_queue"] as? Int ?? 0) >= 3 })
            try body(s, clients)
        }

        @Test func groupTermAnswersInFlightAndQueuedRequestsThenExits0() throws {
            try withSlowRequests([]) { s, clients throws in
                let workers = s.workers
                s.signalGroup(SIGTERM)
                for (i, c) in clients.enumerated() {
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200, "client \(i): \(r.status)")
                }
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
                #expect(workers.allSatisfy { !isAlive($0) })
                #expect(s.log.contains("process group"), "the log says the TERM went to the whole group:\n\(s.log)")
                #expect(!s.log.contains("died"), "\(s.log)")
            }
        }

        /// With harakiri's graceful signal left at TERM (the sleep app has a handler for it), a group TERM
        /// is still a stop, not a harakiri: the handler does not run and the requests are answered.
        @Test func groupTermIsNotHarakiriWhenTermIsTheGracefulSignal() throws {
            try withSlowRequests(["--harakiri", "20", "--harakiri-graceful-timeout", "3"]) { s, clients throws in
                s.signalGroup(SIGTERM)
                for (i, c) in clients.enumerated() {
                    #expect(try c.readResponse(timeout: 10).status == 200, "client \(i)")
                }
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
                #expect(!s.log.contains("harakiri graceful signal received"), "\(s.log)")
            }
        }

        /// Idle workers get the group TERM too and may be gone before the master reads its own: the log still
        /// names the group, and no replacement is forked into the shutdown.
        @Test func groupTermToIdleWorkersIsLoggedAsAGroupTerm() throws {
            for round in 0..<3 {
                let dir = try TempDir()
                defer { dir.remove() }
                let s = try Server(["--processes", "2", "--app", "hello"], dir: dir, newProcessGroup: true)
                defer { s.stop() }
                _ = s.waitWorkers(2)
                s.signalGroup(SIGTERM)
                #expect(s.waitExit(timeout: 10) == 0, "round \(round): \(s.log)")
                #expect(s.log.contains("whole process group"), "round \(round): \(s.log)")
                #expect(!s.log.contains("retiring worker"), "round \(round): \(s.log)")
            }
        }

        /// TERM to the master alone is logged as such.
        @Test func termToTheMasterAloneIsLoggedAsSuch() throws {
            try withSlowRequests([]) { s, clients throws in
                s.signal(SIGTERM)
                for c in clients { #expect(try c.readResponse(timeout: 10).status == 200) }
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
                #expect(s.log.contains("SIGTERM to the master"), "\(s.log)")
                #expect(!s.log.contains("process group"), "\(s.log)")
            }
        }

        /// TERM to one worker (an operator's `kill`): it answers its request, leaves, and is replaced.
        @Test func termToOneWorkerFinishesItsRequestAndIsReplaced() throws {
            try withServer(["--processes", "1", "--app", "sleep", "--stats", "{dir}/stats"]) { s throws in
                let worker = try #require(s.waitWorkers(1).first)
                let c = try s.connect()
                try c.send(httpGet("/sleep/1"))
                _ = try waitBusy(s, stats: s.dir.file("stats"), count: 1)
                kill(worker, SIGTERM)
                let r = try c.readResponse(timeout: 10)
                #expect(r.status == 200)
                #expect(r.header("Connection")?.lowercased() == "close", "the retiring worker says so")
                #expect(waitUntil(5) { !isAlive(worker) })
                let next = s.waitWorkers(1) { !$0.contains(worker) }
                #expect(next.count == 1 && next.first != worker, "\(s.log)")
                #expect(try s.get("/").status == 200)
                #expect(s.log.contains("SIGTERM"), "\(s.log)")
                #expect(!s.log.contains("died"), "not a crash:\n\(s.log)")
                #expect(s.isRunning)
            }
        }
    }
}
