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
                // The spread is the kernel's wake-up order, which a busy machine can upset (a worker not yet back
                // in epoll_wait passes its turn on): up to three trials, one must spread. Without the rejoin every
                // trial puts all twelve on one worker.
                var trials: [[String: Int]] = []
                for trial in 0..<3 {
                    // Each connection gets its answer before the next one opens, and all stay open (idle keep-alive).
                    var clients: [Client] = []
                    for i in 0..<12 {
                        let c = try s.connect()
                        try c.send("GET /spread/\(trial)/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                        #expect(try c.readResponse(timeout: 10).status == 200)
                        clients.append(c)
                    }
                    // Each worker logs after it answered: wait for all twelve lines, whichever worker wrote them.
                    #expect(s.waitForLog("GET /spread/\(trial)/", count: 12))
                    // The access log names the worker of each request.
                    var byWorker: [String: Int] = [:]
                    for line in s.logLines where line.contains("GET /spread/\(trial)/") {
                        guard let open = line.range(of: "[pid "), let close = line[open.upperBound...].firstIndex(of: "]") else { continue }
                        byWorker[String(line[open.upperBound..<close]), default: 0] += 1
                    }
                    #expect(byWorker.values.reduce(0, +) == 12, "every request logged: \(byWorker)")
                    trials.append(byWorker)
                    withExtendedLifetime(clients) {}
                    if byWorker.count == 2 && byWorker.values.allSatisfy({ $0 >= 4 }) { break }
                }
                #expect(trials.contains { $0.count == 2 && $0.values.allSatisfy { $0 >= 4 } },
                        "12 connections over 2 idle workers, each should hold about half: \(trials)")
            }
        }
            /// A library, LD_PRELOADed, whose epoll_ctl refuses (ENOSPC, what the per-user limit on watched fds
        /// answers) to watch a listener again once the process stopped watching it: the rejoin after an
        /// accept, and a threaded worker's return to the listener once a thread is free.
        static func failingRewatchLibrary(_ dir: TempDir) throws -> String? {
            try dir.write("rewatch.c", """
                #define _GNU_SOURCE
                #include <dlfcn.h>
                #include <errno.h>
                #include <sys/epoll.h>
                static unsigned char added[65536], removed[65536];
                int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
                    static int (*real)(int, int, int, struct epoll_event *);
                    if (!real) real = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
                    if (fd >= 0 && fd < 65536) {
                        if (op == EPOLL_CTL_ADD && ev && (ev->events & EPOLLEXCLUSIVE)) {
                            if (removed[fd]) { errno = ENOSPC; return -1; }
                            added[fd] = 1;
                        } else if (op == EPOLL_CTL_DEL && added[fd]) {
                            removed[fd] = 1;
                        }
                    }
                    return real(epfd, op, fd, ev);
                }
                """)
            guard access("/usr/bin/cc", X_OK) == 0 else {
                Issue.record("/usr/bin/cc is missing: apt-get install gcc")
                return nil
            }
            let cc = try Process.run(URL(fileURLWithPath: "/usr/bin/cc"),
                                     arguments: ["-shared", "-fPIC", "-o", dir.file("rewatch.so"), dir.file("rewatch.c"), "-ldl"])
            cc.waitUntilExit()
            #expect(cc.terminationStatus == 0)
            return dir.file("rewatch.so")
        }

        /// The rejoin is an optimisation: when epoll_ctl cannot watch the listener again, the worker must not
        /// drop what it holds (it exited at once: the connection just accepted was reset unanswered, and its
        /// keep-alive connections closed). It serves them, says why it stops accepting, and is replaced.
        @Test func aFailedRejoinDropsNoConnection() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            guard let library = try Self.failingRewatchLibrary(dir) else { return }
            let s = try Server(["--processes", "1", "--app", "hello"], dir: dir, environment: ["LD_PRELOAD": library])
            defer { s.stop() }
            let a = try s.connect()
            try a.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try a.readResponse(timeout: 10).status == 200)
            // Accepted while the worker holds `a`: the rejoin runs, and fails.
            let b = try s.connect()
            try b.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect((try? b.readResponse(timeout: 10))?.status == 200, "the connection accepted before the failure is answered:\n\(s.log)")
            try? a.send("GET /a2 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect((try? a.readResponse(timeout: 10))?.status == 200, "the keep-alive connection is served:\n\(s.log)")
            #expect(s.log.contains("epoll_ctl"), "the failure is logged:\n\(s.log)")
            // A replacement accepts (its own first accept needs no rejoin).
            #expect(waitUntil(10) { (try? s.get("/after", timeout: 2))?.status == 200 }, "a worker accepts again:\n\(s.log)")
        }

        /// The same with request threads: the worker leaves the listener while every thread is taken and
        /// watches it again when one is free; that failing must not cut the request still in hand.
        @Test func aFailedRewatchWithThreadsDropsNoRequest() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            guard let library = try Self.failingRewatchLibrary(dir) else { return }
            let s = try Server(["--processes", "1", "--threads", "2", "--app", "sleep"], dir: dir, environment: ["LD_PRELOAD": library])
            defer { s.stop() }
            let short = try s.connect(), long = try s.connect()
            try short.send("GET /sleep/0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
            try long.send("GET /sleep/1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect((try? short.readResponse(timeout: 10))?.status == 200)
            #expect((try? long.readResponse(timeout: 10))?.status == 200, "the request in hand when the rewatch failed is answered:\n\(s.log)")
            #expect(s.log.contains("epoll_ctl"), "the failure is logged:\n\(s.log)")
            #expect(waitUntil(10) { (try? s.get("/sleep/0", timeout: 2))?.status == 200 }, "a worker accepts again:\n\(s.log)")
        }

        /// What one looping client saw: its answers (and those from `lateFrom` on), its worst wait, how often the
        /// server closed its connection, and the worker that answered it last (the access log).
        struct LoopingClient {
            var answered = 0, lateAnswered = 0, worstWait = 0.0, reconnects = 0
            var worker: String? = nil
            /// Why the client stopped before the end, if it did.
            var failure: String? = nil
        }

        /// Keep-alive clients that each send a request as soon as the last one is answered (wrk's pattern, a
        /// busy nginx pool): `clients` of them for `seconds`, each request taking `requestSeconds` in the app.
        /// Like wrk and nginx, a client whose connection the server closes (`Connection: close`, the excess rule)
        /// connects again; the wait for that request counts from before the connect. A client stops at the first
        /// failure (an error or a status other than 200) and says why in `failure`.
        static func loopingClients(_ s: Server, clients: Int, seconds: Double, requestSeconds: Double, lateFrom: Double = 0)
            -> (clients: [LoopingClient], order: [String: [Int]]) {
            let box = FairnessBox(count: clients)
            let started = Date()
            let socket = s.socket!
            let done = DispatchSemaphore(value: 0)
            for i in 0..<clients {
                Thread {
                var me = LoopingClient()
                var c: Client? = nil
                while Date().timeIntervalSince(started) < seconds {
                    let sent = Date()
                    if c == nil { c = try? Client(path: socket) }
                    guard let conn = c else { me.failure = "connect failed"; break }
                    do {
                        try conn.send("GET /sleep/\(requestSeconds)?client=\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                    } catch { me.failure = "send: \(error)"; break }
                    // A request still unanswered at the end counts with its age (as the benchmark's probe).
                    let reply: HTTPReply
                    do {
                        reply = try conn.readResponse(timeout: max(0.05, seconds + 10 - Date().timeIntervalSince(started)))
                    } catch { me.failure = "read: \(error)"; break }
                    me.worstWait = max(me.worstWait, Date().timeIntervalSince(sent))
                    guard reply.status == 200 else { me.failure = "status \(reply.status)"; break }
                    me.answered += 1
                    if Date().timeIntervalSince(started) >= lateFrom { me.lateAnswered += 1 }
                    if !reply.keepAlive { c = nil; me.reconnects += 1 }
                }
                box.set(i, me)
                done.signal()
                }.start()
            }
            for _ in 0..<clients { done.wait() }
            var results = box.all
            var order: [String: [Int]] = [:]
            for line in s.logLines {
                guard let q = line.range(of: "?client="), let open = line.range(of: "[pid "),
                      let close = line[open.upperBound...].firstIndex(of: "]") else { continue }
                let digits = line[q.upperBound...].prefix { $0.isNumber }
                guard let i = Int(digits), results.indices.contains(i) else { continue }
                let worker = String(line[open.upperBound..<close])
                results[i].worker = worker
                order[worker, default: []].append(i)
            }
            return (results, order)
        }

        /// Issue 17: every connection gets its turn. Clients looping requests on 2 workers each get about the
        /// same number of answers and none waits much longer than its fair share ((clients / workers / threads)
        /// request times). Before: a saturated threaded worker took every connection still queued (24 of 32 on
        /// one worker), and a single-threaded one whichever came while the other was busy.
        @Test(arguments: [2, 1]) func loopingKeepAliveClientsGetFairTurns(threads: Int) throws {
            let clients = threads == 1 ? 16 : 32, requestSeconds = 0.05, seconds = 3.0
            try withServer(["--processes", "2", "--threads", "\(threads)", "--app", "sleep"]) { s throws in
                #expect(s.waitWorkers(2).count == 2)
                let (results, order) = Self.loopingClients(s, clients: clients, seconds: seconds, requestSeconds: requestSeconds)
                let fair = Double(clients) / Double(2 * threads) * requestSeconds
                var perWorker: [String: Int] = [:]
                for r in results { perWorker[r.worker ?? "none", default: 0] += 1 }
                let answered = results.map(\.answered), worst = results.map(\.worstWait).max() ?? 0
                let report = "2 x \(threads), \(clients) clients: connections per worker \(perWorker), answers per client \(answered.sorted()), worst wait \(Int(worst * 1000)) ms (fair \(Int(fair * 1000)) ms), failures \(results.compactMap(\.failure)); clients in the order each worker answered them: \(order)"
                // Each worker holds between a quarter and three quarters of the connections.
                #expect(results.allSatisfy { $0.failure == nil }, "\(report)")
                #expect(perWorker.count == 2 && perWorker.values.allSatisfy { $0 >= clients / 4 }, "\(report)")
                // Load stretches every wait alike; an unfair order gives some clients several times the answers of others.
                // (2.5: with one thread a client gets only about 8 answers in 3 s, and the first comes after the burst's ramp.)
                #expect(answered.min()! > 0 && Double(answered.max()!) <= 2.5 * Double(answered.min()!), "\(report)")
                // With margin for a loaded 2-core machine: 2.5 fair shares.
                #expect(worst <= 2.5 * fair, "\(report)")
            }
        }

        /// A connection the server closes is closed at once, however long the worker stays saturated. The
        /// request threads' job queue kept every job it ever held (and with it the connection) until the queue
        /// ran empty: under a load that keeps it non-empty, a response saying `Connection: close` was followed
        /// by no close (the fd stayed open, the client's next request unread: 16 of 64 clients waited seconds).
        @Test func aConnectionClosedByTheServerIsClosedWhileTheThreadsStaySaturated() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "1", "--threads", "2", "--app", "sleep"], dir: dir)
            defer { s.stop() }
            let result = Self.whileSaturated(s, clients: 8, seconds: 3.0) {
                // HTTP/1.0 without keep-alive: answered, then closed by the server.
                let c = try Client(path: s.socket!)
                try c.send("GET /sleep/0.01?one-zero HTTP/1.0\r\nHost: x\r\n\r\n")
                let reply = try c.readResponse(timeout: 5)
                let closed = c.closesWithoutData(timeout: 1.0)
                return "status \(reply.status), closed within 1 s: \(closed)"
            }
            #expect(result == "status 200, closed within 1 s: true")
        }

        /// Runs `probe` while `clients` looping clients keep one worker's threads saturated.
        static func whileSaturated(_ s: Server, clients: Int, seconds: Double, _ probe: () throws -> String) -> String {
            let group = DispatchGroup()
            let failures = FailureBox()
            let started = Date()
            let socket = s.socket!
            for i in 0..<clients {
                group.enter()
                Thread {
                    Self.loopReconnecting(socket, client: i, started: started, seconds: seconds, late: seconds, failures: failures)
                    group.leave()
                }.start()
            }
            // The queue is non-empty once every client has sent its first request.
            _ = s.waitForLog("client=\(clients - 1)&", count: 1)
            let outcome = (try? probe()) ?? "probe failed"
            group.wait()
            return failures.all.isEmpty ? outcome : "\(outcome); client failures: \(failures.all.prefix(3))"
        }

        /// One client sending GET /sleep/0.02 in a loop for `seconds`, connecting again whenever the server
        /// closes; requests sent after `late` are tagged `&late`.
        static func loopReconnecting(_ socket: String, client i: Int, started: Date, seconds: Double, late: Double, failures: FailureBox) {
            var c: Client? = nil
            while Date().timeIntervalSince(started) < seconds {
                do {
                    let conn = try c ?? Client(path: socket)
                    c = conn
                    let phase = Date().timeIntervalSince(started) >= late ? "late" : "early"
                    try conn.send("GET /sleep/0.02?client=\(i)&\(phase) HTTP/1.1\r\nHost: x\r\n\r\n")
                    let reply = try conn.readResponse(timeout: 10)
                    if reply.status != 200 { failures.add("client \(i): status \(reply.status)") }
                    if !reply.keepAlive { c = nil }
                } catch {
                    failures.add("client \(i): \(error)")
                    c = nil
                }
            }
        }

        /// `clients` threads running `loopReconnecting`; returns the failures they saw.
        static func reconnectingClients(_ socket: String, clients: Int, seconds: Double, late: Double) -> [String] {
            let started = Date()
            let done = DispatchSemaphore(value: 0)
            let failures = FailureBox()
            for i in 0..<clients {
                Thread {
                    Self.loopReconnecting(socket, client: i, started: started, seconds: seconds, late: late, failures: failures)
                    done.signal()
                }.start()
            }
            for _ in 0..<clients { done.wait() }
            return failures.all
        }

        /// Issue 17: an uneven split of keep-alive connections does not last. One worker is held by a long
        /// request while 16 looping clients connect: the other takes them all (after the patience, so none waits
        /// on the stuck worker). Once the long request is over, the worker holding them all lets its excess go
        /// (`Connection: close` on their next answer); the clients connect again and the other worker takes its
        /// share. Before: with keep-alive the split never changed, and one worker of two served every request
        /// (what a load starting right after another got when one worker's count was still high).
        @Test(arguments: [1, 2]) func anUnevenSplitOfKeepAliveConnectionsIsUndone(threads: Int) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--threads", "\(threads)", "--app", "sleep"], dir: dir)
            defer { s.stop() }
            let report = try Self.unevenSplit(s, threads: threads)
            #expect(report.even, "\(report.text)")
        }

        static func unevenSplit(_ s: Server, threads: Int) throws -> (even: Bool, text: String) {
            let clients = 16 * threads, seconds = 4.0, longRequest = 1.0, late = 2.5
            #expect(s.waitWorkers(2).count == 2)
            // Every thread of one worker is held (the others' looping clients go to the free worker).
            var holders: [Client] = []
            for _ in 0..<threads { holders.append(try s.connect()) }
            for h in holders { try h.send("GET /sleep/\(longRequest)?long HTTP/1.1\r\nHost: x\r\n\r\n") }
            let failures = Self.reconnectingClients(s.socket!, clients: clients, seconds: seconds, late: late)
            for h in holders {
                let reply = try h.readResponse(timeout: 10)
                #expect(reply.status == 200)
            }
            #expect(failures.isEmpty, "no request failed: \(failures.prefix(5))")
            var lateByWorker: [String: Int] = [:]
            for line in s.logLines where line.contains("&late") {
                guard let open = line.range(of: "[pid "), let close = line[open.upperBound...].firstIndex(of: "]") else { continue }
                lateByWorker[String(line[open.upperBound..<close]), default: 0] += 1
            }
            let total = lateByWorker.values.reduce(0, +)
            // Both workers serve: each at least a quarter of the requests sent in the last 1.5 s.
            let even = total > 0 && lateByWorker.count == 2 && lateByWorker.values.allSatisfy { $0 * 4 >= total }
            return (even, "2 x \(threads), \(clients) clients, requests of the last \(seconds - late) s per worker: \(lateByWorker)")
        }
    }
}

/// Failures seen by several client threads.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Per-client results filled in from several threads.
final class FairnessBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [SWSGIIntegration.ConnectionSpread.LoopingClient]
    init(count: Int) { items = Array(repeating: .init(), count: count) }
    func set(_ i: Int, _ item: SWSGIIntegration.ConnectionSpread.LoopingClient) { lock.lock(); items[i] = item; lock.unlock() }
    var all: [SWSGIIntegration.ConnectionSpread.LoopingClient] { lock.lock(); defer { lock.unlock() }; return items }
}
