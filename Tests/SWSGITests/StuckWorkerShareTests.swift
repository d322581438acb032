// Issue 17's fair share and excess rule count every accepting worker. A worker whose every request thread is
// held by a long request (a slow report, a stuck upstream) cannot serve a connection until one ends: it must
// neither be counted as room for the others' connections nor take new ones itself.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct StuckWorkerShare {
        /// One single-threaded worker of two is held by a long request while 16 clients loop on the other. That
        /// one holds them all, but it is the only worker that can serve: letting connections go makes their
        /// clients connect again to the same worker (after the 100 ms it leaves them to the stuck one), over
        /// and over. Before: 72 answers of 293 said close in 5.5 s, and each reconnected client's first request
        /// waited 642 ms (median) where the others waited 204.
        @Test func aWorkerHeldByALongRequestIsNotCountedWhenConnectionsAreLetGo() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--app", "sleep", "--stats", "{dir}/stats"], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(2).count == 2)
            let holder = try s.connect()
            try holder.send("GET /sleep/4?long HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try waitBusy(s, stats: dir.file("stats"), count: 1)
            let (results, _) = ConnectionSpread.loopingClients(s, clients: 16, seconds: 3.0, requestSeconds: 0.02)
            let run = (answered: results.map(\.answered).reduce(0, +), closes: results.map(\.reconnects).reduce(0, +))
            #expect(results.compactMap(\.failure).isEmpty, "\(results.compactMap(\.failure).prefix(3))")
            #expect(run.answered > 0 && run.closes == 0,
                    "while the other worker was held, \(run.closes) of \(run.answered) answers said Connection: close")
            #expect(try holder.readResponse(timeout: 10).status == 200)
        }

        /// Every thread of one worker of two is held by a long request while 16 keep-alive clients start: the
        /// other worker (one thread free) serves them all. Before: the held worker's saturated look took its share
        /// and those clients waited for the long requests (7 of 16 waited 4.8 s) while the other answered in 90 ms.
        @Test func aWorkerWhoseThreadsAreAllHeldTakesNoNewConnection() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--threads", "2", "--app", "sleep", "--stats", "{dir}/stats"], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(2).count == 2)
            // Three long requests on two workers of two threads: one worker has both threads held (the other one
            // of its two).
            var holders: [Client] = []
            for _ in 0..<3 {
                let h = try s.connect()
                try h.send("GET /sleep/4?long HTTP/1.1\r\nHost: x\r\n\r\n")
                holders.append(h)
            }
            #expect(waitUntil(5) {
                statsWorkers((try? readStats(dir.file("stats"))) ?? [:]).contains {
                    (($0["cores"] as? [[String: Any]]) ?? []).filter { $0["status"] as? String == "busy" }.count == 2
                }
            }, "one worker has both threads held")
            usleep(150_000)  // past the 100 ms from which a request holds its thread
            let (results, _) = ConnectionSpread.loopingClients(s, clients: 16, seconds: 3.0, requestSeconds: 0.02)
            let worst = results.map(\.worstWait).max() ?? 0
            #expect(results.allSatisfy { $0.answered > 0 } && worst < 1.5,
                    "worst wait \(Int(worst * 1000)) ms; answers per client \(results.map(\.answered))")
            for h in holders { #expect(try h.readResponse(timeout: 10).status == 200) }
        }

        /// The other side of the rule above: threads busy with short requests whose jobs waited in the queue are not
        /// held, however old the request heads are. 2 workers x 2 threads saturated by 40 looping clients (each
        /// job waits about 200 ms for a thread), then 8 more clients: each gets answers within a few rounds (a
        /// round is 0.24 s). Judged from the heads' arrival, saturated workers mostly looked stuck and skipped
        /// their looks: the 8 waited up to 1 s (0.25 s judged from when a thread took the job).
        @Test func saturatedWorkersWhoseJobsQueueStillTakeNewConnections() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--threads", "2", "--app", "sleep"], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(2).count == 2)
            let socket = s.socket!
            let background = Thread { _ = ConnectionSpread.reconnectingClients(socket, clients: 40, seconds: 4.0, late: 4.0) }
            background.start()
            _ = s.waitForLog("client=39&", count: 1)
            usleep(500_000)
            let (late, _) = ConnectionSpread.loopingClients(s, clients: 8, seconds: 2.0, requestSeconds: 0.02)
            let worst = late.map(\.worstWait).max() ?? 99
            // 48 clients on 4 threads of 20 ms requests: a round is 0.24 s.
            #expect(late.allSatisfy { $0.answered > 0 } && worst < 1.0,
                    "8 clients that came while the workers were saturated: worst wait \(Int(worst * 1000)) ms, answers \(late.map(\.answered))")
            usleep(2_500_000)
        }

        /// A worker whose every thread is held by a long request (a long poll, a stream) has nothing to look at until
        /// a thread is free: its main thread sleeps. Before: it looked at the listen queue every 20 ms (a netlink
        /// query each time) for as long as the requests ran, 50 wake-ups a second.
        @Test func aWorkerWhoseThreadsAreAllHeldSleeps() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "1", "--threads", "2", "--app", "sleep", "--stats", "{dir}/stats"], dir: dir)
            defer { s.stop() }
            let worker = try #require(s.waitWorkers(1).first)
            var holders: [Client] = []
            for _ in 0..<2 {
                let h = try s.connect()
                try h.send("GET /sleep/2.5?long HTTP/1.1\r\nHost: x\r\n\r\n")
                holders.append(h)
            }
            #expect(waitUntil(5) {
                statsWorkers((try? readStats(dir.file("stats"))) ?? [:]).contains {
                    (($0["cores"] as? [[String: Any]]) ?? []).filter { $0["status"] as? String == "busy" }.count == 2
                }
            }, "both threads are held")
            usleep(300_000)  // past the 100 ms from which a request holds its thread, and one more look
            let before = contextSwitches(worker) ?? 0
            usleep(1_000_000)
            let woke = (contextSwitches(worker) ?? .max) - before
            #expect(woke < 10, "the main thread of a worker whose threads are all held woke \(woke) times in 1 s")
            for h in holders { #expect(try h.readResponse(timeout: 10).status == 200) }
        }
    }
}
