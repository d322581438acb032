import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct Lifecycle {
        @Test func sigtermServesInFlightAndQueuedRequestsThenExits0() throws {
            try withServer(["--processes", "2", "--app", "sleep", "--stats", "{dir}/stats"]) { s throws in
                let stats = s.dir.file("stats")
                _ = s.waitWorkers(2)
                var clients: [Client] = []
                for _ in 0..<2 {
                    let c = try s.connect()
                    try c.send(httpGet("/sleep/1"))
                    clients.append(c)
                }
                _ = try waitBusy(s, stats: stats, count: 2)
                // Both workers sleep: these wait in the listen queue.
                for i in 0..<4 {
                    let c = try s.connect()
                    try c.send(httpGet("/sleep/0.0\(i)"))
                    clients.append(c)
                }
                let queued = waitUntil(3) { ((try? readStats(stats))?["listen_queue"] as? Int ?? 0) >= 4 }
                #expect(queued, "4 connections queued: \((try? readStats(stats)) ?? [:])")
                s.signal(SIGTERM)
                for (i, c) in clients.enumerated() {
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200, "client \(i)")
                }
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
                #expect(!fileExists(s.socket!), "the socket path is removed")
                #expect(s.log.contains("graceful shutdown"))
            }
        }

        @Test func sigintExitsPromptly() throws {
            try withServer(["--processes", "2"]) { s throws in
                let workers = s.waitWorkers(2)
                #expect(try s.get("/").status == 200)
                let t0 = monotonicSeconds()
                s.signal(SIGINT)
                let status = s.waitExit(timeout: 5)
                #expect(status == 0, "log:\n\(s.log)")
                #expect(monotonicSeconds() - t0 < 1.5)
                #expect(waitUntil(2) { workers.allSatisfy { !isAlive($0) } })
                #expect(!fileExists(s.socket!))
            }
        }

        /// Three reloads in a row while two clients keep asking: one opens a connection per request, the
        /// other keeps its connection alive and reconnects only when told `Connection: close`.
        @Test func sighupReplacesEveryWorkerWithoutFailingARequest() throws {
            try withServer(["--processes", "2"]) { s throws in
                var generation = Set(s.waitWorkers(2))
                try #require(generation.count == 2)
                let first = generation
                var failures: [String] = []
                var served = 0, reloads = 0, closesSeen = 0
                var keepAlive = try s.connect()
                var hupAt: Int? = nil
                let deadline = monotonicSeconds() + 30
                while reloads < 3 && monotonicSeconds() < deadline {
                    do {
                        let r = try s.get("/", timeout: 5)
                        if r.status == 200 { served += 1 } else { failures.append("new connection: status \(r.status)") }
                    } catch {
                        failures.append("new connection: \(error)")
                    }
                    do {
                        try keepAlive.send(httpGet("/"))
                        let r = try keepAlive.readResponse(timeout: 5)
                        if r.status == 200 { served += 1 } else { failures.append("keep-alive: status \(r.status)") }
                        if r.header("Connection")?.lowercased() == "close" {
                            closesSeen += 1
                            keepAlive = try s.connect()
                        }
                    } catch {
                        failures.append("keep-alive: \(error)")
                        keepAlive = try s.connect()
                    }
                    if hupAt == nil && served >= 10 {
                        s.signal(SIGHUP)
                        hupAt = served
                    } else if hupAt != nil {
                        let now = Set(s.workers)
                        if now.count == 2 && now.isDisjoint(with: generation) && served >= hupAt! + 20 {
                            reloads += 1
                            generation = now
                            hupAt = nil
                        }
                    }
                }
                #expect(failures.isEmpty, "\(failures.count) failures of \(served + failures.count): \(failures.prefix(3))")
                #expect(reloads == 3, "workers not all replaced: \(generation) -> \(s.workers); log:\n\(s.log)")
                #expect(closesSeen >= 3, "each reload tells the keep-alive client to reconnect")
                let now = s.waitWorkers(2)
                #expect(Set(now).isDisjoint(with: first))
                #expect(Set(now.compactMap(workerID)) == [1, 2])
                #expect(s.log.components(separatedBy: "reloading 2 workers").count - 1 == 3)
            }
        }

        @Test func sighupClosesIdleKeepAliveConnectionsCleanly() throws {
            try withServer(["--processes", "1"]) { s throws in
                let old = s.waitWorkers(1)
                let c = try s.connect()
                try c.send(httpGet("/"))
                #expect(try c.readResponse().status == 200)
                s.signal(SIGHUP)
                #expect(c.closesWithoutData(timeout: 5), "the retiring worker closes the idle connection")
                let now = s.waitWorkers(1) { $0 != old }
                #expect(now != old)
                #expect(try s.get("/").status == 200)
            }
        }

        @Test func sigttinAndSigttouAddAndRemoveWorkers() throws {
            try withServer(["--processes", "2"]) { s throws in
                let start = s.waitWorkers(2)
                try #require(start.count == 2)
                s.signal(SIGTTOU)
                let one = s.waitWorkers(1)
                #expect(one.count == 1, "children: \(s.workers)")
                #expect(one.compactMap(workerID) == [1], "the highest id leaves")
                #expect(s.waitForLog("SIGTTOU: workers 2 -> 1"))
                s.signal(SIGTTOU)
                #expect(s.waitForLog("SIGTTOU: keeping the last worker"))
                #expect(s.workers == one)
                #expect(try s.get("/").status == 200)

                s.signal(SIGTTIN)
                let two = s.waitWorkers(2)
                #expect(two.count == 2, "children: \(s.workers)")
                #expect(Set(two.compactMap(workerID)) == [1, 2])
                #expect(s.waitForLog("SIGTTIN: workers 1 -> 2"))
                s.signal(SIGTTIN)
                #expect(s.waitForLog("SIGTTIN: already at --processes 2"))
                #expect(s.waitWorkers(2) == two)
                for _ in 0..<3 { #expect(try s.get("/").status == 200) }
            }
        }

        @Test func workerReloadMercyKillsAStuckWorkerAtShutdown() throws {
            try withServer(["--processes", "1", "--app", "sleep", "--worker-reload-mercy", "1", "--stats", "{dir}/stats"]) { s throws in
                let worker = s.waitWorkers(1)
                let c = try s.connect()
                try c.send(httpGet("/sleep/30"))
                let busy = try waitBusy(s, stats: s.dir.file("stats"), count: 1)
                #expect(busy.first?["request"] as? String == "GET /sleep/30")
                #expect(busy.first?["request_age_ms"] is Int)
                let t0 = monotonicSeconds()
                s.signal(SIGTERM)
                let status = s.waitExit(timeout: 8)
                let elapsed = monotonicSeconds() - t0
                #expect(status == 0, "log:\n\(s.log)")
                #expect(elapsed > 0.9 && elapsed < 4, "mercy 1 s: exited after \(elapsed) s")
                let pid = try #require(worker.first)
                #expect(s.logLines.contains { $0.contains("(pid \(pid))") && $0.contains("--worker-reload-mercy") && $0.contains("SIGKILL") },
                        "the SIGKILL is logged: \(s.log)")
                #expect(s.log.contains("(pid \(pid)) retired: killed by SIGKILL"))
                #expect(c.closesWithoutData(timeout: 2), "the killed request gets no response")
                #expect(worker.allSatisfy { !isAlive($0) })
            }
        }
    }
}

extension SWSGIIntegration.Lifecycle {
    /// Worker.swift `expireConnections`: a connection that has not sent a byte is only ever expired by
    /// --header-timeout, even while retiring, so one silent client (a health checker, a pre-connecting
    /// proxy) holds a graceful stop or reload for up to --header-timeout (10 s by default) instead of
    /// the 200 ms retire grace idle keep-alive connections get.
    @Test func silentConnectionDoesNotHoldUpShutdown() throws {
        try withServer(["--processes", "1", "--header-timeout", "2"]) { s throws in
            _ = s.waitWorkers(1)
            let silent = try s.connect()
            #expect(try s.get("/").status == 200, "the silent connection has been accepted by now")
            let t0 = monotonicSeconds()
            s.signal(SIGTERM)
            #expect(s.waitExit(timeout: 10) == 0)
            let took = monotonicSeconds() - t0
            #expect(took < 1.2, "exit took \(took) s")
            #expect(silent.closesWithoutData(timeout: 1))
        }
    }
}
