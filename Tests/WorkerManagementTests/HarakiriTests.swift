import Foundation
import Glibc
import Testing

extension WorkerManagementIntegration {
    @Suite struct Harakiri {
        static let marker = "swsgi sleep app: harakiri graceful signal received"
        static let sigkillLine = "still running after --harakiri-graceful-timeout: SIGKILL"

        /// Harakiri with grace: the app's handler runs on the graceful signal before SIGKILL, the
        /// replacement serves while the stuck worker is still alive, stats count the harakiri.
        @Test func gracefulSignalThenKillWithReplacementServingDuringGrace() async throws {
            // A 3 s grace: room for the replacement to start and answer on 2 cores shared with the suite.
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "1", "--harakiri-graceful-timeout", "3"])
            defer { s.stop() }
            let before = try s.stats()
            let old = try #require(before.workers.first)
            #expect(old.harakiriCount == 0)

            let stuck = InFlight(s.socket, "/sleep/10", timeout: 15)
            let harakiri = try await s.waitForLine("HARAKIRI worker 1 (pid \(old.pid))", timeout: 4)
            #expect(harakiri.contains("GET /sleep/10"))
            let running = try #require(number(after: "running ", in: harakiri))
            #expect(running >= 1000 && running <= 1500, "HARAKIRI reported \(running) ms for --harakiri 1")

            // During the grace: the replacement (same id, new pid) serves while the old pid still exists.
            let quick = try await onThread { [socket = s.socket] in try request(socket, "/sleep/0", timeout: 2.5) }
            #expect(quick.status == 200)
            #expect(quick.body == "slept 0\n")
            #expect(isAlive(old.pid), "old worker \(old.pid) was gone before the replacement served a request")
            #expect(s.lines(containing: Self.sigkillLine).isEmpty, "SIGKILL came before the replacement served: \(s.log())")
            let during = try s.stats()
            #expect(during.workers.contains { $0.pid == old.pid && $0.status == "retiring" })
            #expect(during.workers.contains { $0.id == 1 && $0.pid != old.pid && $0.status != "retiring" })

            // Then SIGKILL, after the app's handler wrote its marker.
            let kill = try await s.waitForLine(Self.sigkillLine, timeout: 6)
            try await s.waitForLine("worker 1 (pid \(old.pid)) retired: killed by SIGKILL", timeout: 6)
            let log = s.logLines()
            let iH = try #require(log.firstIndex { $0.contains("HARAKIRI worker 1") })
            let iM = try #require(log.firstIndex { $0.contains(Self.marker) }, "the app's harakiri handler never wrote its marker")
            let iK = try #require(log.firstIndex { $0.contains(Self.sigkillLine) })
            #expect(iH < iM && iM < iK, "expected HARAKIRI < marker < SIGKILL, got \(iH), \(iM), \(iK)")
            #expect(kill.contains("(pid \(old.pid))"))
            if let t0 = logTimeMillis(harakiri), let t1 = logTimeMillis(kill) {
                // Never shorter than the grace. The two stamps are millisecond wall-clock times of log lines,
                // and the HARAKIRI line is written just after the grace starts: allow 10 ms for that (it came
                // out 2999 once). The upper bound is loose (a loaded machine delays the master).
                #expect(t1 - t0 >= 2990 && t1 - t0 <= 5000, "grace lasted \(t1 - t0) ms for --harakiri-graceful-timeout 3")
            }
            let outcome = try await stuck.result()
            if case .success(let r) = outcome { Issue.record("the harakiri'd request got a response: \(r.status) \(r.body)") }
            #expect(stuck.duration.map { $0 < 8 } == true, "the stuck request lasted \(stuck.duration ?? -1) s")

            try await waitFor(10, "old pid reaped") { !isAlive(old.pid) }
            let after = try s.stats()
            let w1 = try #require(after.workers.first { $0.id == 1 })
            #expect(after.workers.count == 1)
            #expect(w1.pid != old.pid)
            #expect(w1.harakiriCount == 1)
            #expect(w1.respawnCount == 1)
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// Request start -> HARAKIRI: never before 1000 ms and not a tick-based second late, three times in a
        /// row (each stuck worker is SIGKILLed at once and replaced). Also from outside: client send time ->
        /// log timestamp. The precision figure itself is measured by `Benchmarks/run workers` (a timed test
        /// on 2 shared cores would be flaky).
        @Test func precisionOfTheDeadline() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "1"])
            defer { s.stop() }
            var reported: [Int] = [], external: [Int64] = []
            for round in 1...3 {
                // The replacement from the last round must be accepting first, so the request starts at once.
                let warm = try await onThread { [socket = s.socket] in try request(socket, "/sleep/0", timeout: 5) }
                #expect(warm.status == 200)
                let stuck = InFlight(s.socket, "/sleep/5", timeout: 10)
                let line = try await s.waitForLine("HARAKIRI worker 1", occurrence: round, timeout: 4)
                let running = try #require(number(after: "running ", in: line))
                reported.append(running)
                let sent = try #require(stuck.sentAtMillis.get())
                let logged = try #require(logTimeMillis(line))
                external.append(logged - sent)
                _ = try await stuck.result()
            }
            print("harakiri precision: reported running ms \(reported); client send -> HARAKIRI log line ms \(external)")
            for r in reported { #expect(r >= 1000 && r <= 1500, "reported \(r) ms (deadline 1000 ms)") }
            // Log timestamps truncate to the millisecond.
            for e in external { #expect(e >= 999 && e <= 1500, "client send -> HARAKIRI log: \(e) ms") }
            #expect(s.lines(containing: "retired: killed by SIGKILL").count >= 2)
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// --harakiri-graceful-queue-threshold 2: an overdue request is held while the listen queue is
        /// short (and completes), and harakiri fires once more than 2 connections wait.
        @Test func queueThresholdHoldsThenFires() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "1",
                                           "--harakiri-graceful-queue-threshold", "2"])
            defer { s.stop() }
            let worker = try #require(try s.stats().workers.first)

            // Phase 1: empty queue: held at 1 s, completes at ~3 s with 200.
            let held = InFlight(s.socket, "/sleep/3", timeout: 8)
            let heldLine = try await s.waitForLine("harakiri held for worker 1 (pid \(worker.pid))", timeout: 10)
            #expect(heldLine.contains("listen queue 0 <= threshold 2"))
            let r1 = try await held.result()
            guard case .success(let ok) = r1 else { Issue.record("held request failed: \(r1)"); return }
            #expect(ok.status == 200)
            // At least its own 3 s; the upper bound only says it was not killed and retried (loose: shared cores).
            #expect(held.duration.map { $0 >= 2.9 && $0 < 7.5 } == true, "held request took \(held.duration ?? -1) s")
            #expect(s.lines(containing: "HARAKIRI").isEmpty)
            #expect(try s.stats().workers.first?.pid == worker.pid)

            // Phase 2: an overdue /sleep/10 with 2 queued connections is still held...
            let stuck = InFlight(s.socket, "/sleep/10", timeout: 15)
            try await waitFor(10, "the /sleep/10 request overdue") { (try s.stats().workers.first?.requestAgeMs ?? 0) >= 1100 }
            var queued: [InFlight] = []
            for _ in 0..<2 { queued.append(InFlight(s.socket, "/sleep/0", timeout: 15)) }
            try await waitFor(10, "listen queue 2") { try s.stats().listenQueue == 2 }
            let heldAt = try #require(try s.stats().workers.first?.requestAgeMs)
            try await waitFor(10, "300 ms more of holding") { (try s.stats().workers.first?.requestAgeMs ?? 0) >= heldAt + 300 }
            #expect(s.lines(containing: "HARAKIRI").isEmpty, "harakiri fired with only 2 queued (threshold 2)")
            // ...and fires once the queue holds more than 2.
            for _ in 0..<2 { queued.append(InFlight(s.socket, "/sleep/0", timeout: 15)) }
            let fired = try await s.waitForLine("HARAKIRI worker 1 (pid \(worker.pid))", timeout: 2)
            let q = try #require(number(after: "listen queue ", in: fired))
            #expect(q > 2, "fired at listen queue \(q)")
            #expect(fired.contains("GET /sleep/10"))
            let stuckOutcome = try await stuck.result()
            if case .success(let r) = stuckOutcome { Issue.record("the harakiri'd request got a response: \(r.status)") }
            for f in queued {
                let r = try await f.result()
                guard case .success(let resp) = r else { Issue.record("queued request failed: \(r)"); continue }
                #expect(resp.status == 200)
            }
            let after = try s.stats()
            #expect(after.workers.first { $0.id == 1 }?.harakiriCount == 1)
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// A harakiri'd request the app ends on the graceful signal (the sleep app's usleep is cut short)
        /// finishes inside the grace. The worker is doomed (SIGKILL at the end of the grace), so it must not
        /// take more work: the response must close the connection, and the client's next request must succeed.
        @Test func requestFinishingDuringTheGraceLeavesNoDoomedConnection() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "1", "--harakiri-graceful-timeout", "2"])
            defer { s.stop() }
            let old = try #require(try s.stats().workers.first)
            let outcome = try await onThread { [socket = s.socket] () -> (HTTPResponse, Result<HTTPResponse, HTTPClientError>) in
                var c = try HTTPConnection(socket)
                // 1.8 s: the harakiri at 1 s fires well before the sleep would end, even on a loaded machine.
                try c.send("GET /sleep/1.8 HTTP/1.1\r\nHost: x\r\n\r\n")
                let first = try c.readResponse(timeout: 5)
                // A well-behaved client: reuse the connection only if the server said so.
                if !first.keepAlive { c = try HTTPConnection(socket) }
                try c.send("GET /sleep/2.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                do { return (first, .success(try c.readResponse(timeout: 8))) } catch let e as HTTPClientError { return (first, .failure(e)) }
            }
            let (first, second) = outcome
            #expect(first.status == 200)
            // Two markers: the old worker's, and the replacement's for the 2.5 s request (which also
            // overruns --harakiri 1 but ends inside its 2 s grace).
            #expect(s.lines(containing: Self.marker).count == 2)
            #expect(s.lines(containing: "HARAKIRI worker 1 (pid \(old.pid))").count == 1)
            #expect(!first.keepAlive, "the harakiri'd worker kept the connection open although it is killed at the end of the grace")
            switch second {
            case .success(let r): #expect(r.status == 200)
            case .failure(let e): Issue.record("the next request failed: \(e); log:\n\(s.log())")
            }
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// A worker already retiring (SIGHUP reload: replacement forked, old one finishing with 60 s of
        /// mercy) still gets harakiri for a stuck request, and no second replacement is forked.
        @Test func harakiriOfARetiringWorkerForksNoSecondReplacement() async throws {
            // --harakiri 3: the request must still be running when the HUP arrives; with 1 s a loaded CI
            // machine polled the stats only after the harakiri had already replaced the worker.
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "3"])
            defer { s.stop() }
            let old = try #require(try s.stats().workers.first)
            let stuck = InFlight(s.socket, "/sleep/10", timeout: 15)
            try await waitFor(10, "the request running") { try s.stats().workers.first?.status == "busy" }
            kill(s.pid, SIGHUP)
            try #require(s.lines(containing: "HARAKIRI").isEmpty, "the harakiri fired before the HUP: \(s.log())")
            try await s.waitForLine("retiring worker 1 (pid \(old.pid)): reload", timeout: 6)
            let fired = try await s.waitForLine("HARAKIRI worker 1 (pid \(old.pid))", timeout: 6)
            #expect(fired.contains("GET /sleep/10"))
            try await s.waitForLine("worker 1 (pid \(old.pid)) retired: killed by SIGKILL", timeout: 6)
            _ = try await stuck.result()
            let after = try s.stats()
            #expect(after.workers.count == 1, "workers after the harakiri: \(after.workers.map { ($0.id, $0.pid, $0.status) })")
            #expect(after.workers.first?.pid != old.pid)
            let r = try await onThread { [socket = s.socket] in try request(socket, "/sleep/0", timeout: 5) }
            #expect(r.status == 200)
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// Each overdue request that the threshold holds is logged, not only the worker's first one.
        @Test func everyHeldRequestIsLogged() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "0.3",
                                           "--harakiri-graceful-queue-threshold", "2"])
            defer { s.stop() }
            for path in ["/sleep/0.6", "/sleep/0.7"] {
                let r = try await onThread { [socket = s.socket] in try request(socket, path, timeout: 5) }
                #expect(r.status == 200)
            }
            #expect(s.lines(containing: "HARAKIRI").isEmpty)
            let held = s.lines(containing: "harakiri held for worker 1")
            #expect(held.contains { $0.contains("GET /sleep/0.6") })
            #expect(held.contains { $0.contains("GET /sleep/0.7") }, "the second held request was not logged: \(held)")
            s.stop()
            #expect(s.survivors().isEmpty)
        }

        /// The uWSGI alias --harakiri-queue-threshold sets the same threshold.
        @Test func queueThresholdAlias() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "1", "--harakiri", "0.3",
                                           "--harakiri-queue-threshold", "2"])
            defer { s.stop() }
            let r = try await onThread { [socket = s.socket] in try request(socket, "/sleep/0.8", timeout: 5) }
            #expect(r.status == 200)
            let held = s.lines(containing: "harakiri held for worker 1")
            #expect(held.count == 1)
            #expect(held.first?.contains("threshold 2") == true)
            #expect(s.lines(containing: "HARAKIRI").isEmpty)
            s.stop()
            #expect(s.survivors().isEmpty)
        }
    }
}
