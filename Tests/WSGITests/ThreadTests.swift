import Foundation
import Glibc
import Testing

/// `--threads N`: request threads in each worker (ThreadedWorker), with every worker-management
/// feature kept: HUP/TERM wait for every thread's request, harakiri interrupts only its own thread,
/// the uwsgi cache stays consistent, keep-alive connections come back to the loop.
extension WSGIIntegration {
    @Suite struct Threads {
        /// Requests that wait for each other (a barrier in marker files), hold until released, spin in
        /// Python (interruptible), or increment the shared cache.
        static let app = #"""
        import os, time, threading, uwsgi

        MARKERS = os.environ['THREAD_MARKERS']

        def held(name, count):
            # Waits (up to 20 s) until `count` requests have arrived here, or the release file exists.
            open(os.path.join(MARKERS, '%s-%d-%d' % (name, os.getpid(), threading.get_ident())), 'w').close()
            end = time.time() + 20
            while time.time() < end:
                if os.path.exists(os.path.join(MARKERS, 'release')):
                    return 'released'
                if count and len([n for n in os.listdir(MARKERS) if n.startswith(name + '-')]) >= count:
                    return 'met'
                time.sleep(0.005)
            return 'timeout'

        def application(environ, start_response):
            path = environ['PATH_INFO']
            parts = path.strip('/').split('/')
            if parts[0] == 'barrier':
                text = held('barrier' + parts[2], int(parts[1]))
            elif parts[0] == 'hold':
                text = held('hold', 0)
            elif parts[0] == 'spin':
                open(os.path.join(MARKERS, 'spinning-%d' % threading.get_ident()), 'w').close()
                try:
                    end = time.time() + float(parts[1])
                    while time.time() < end:
                        time.sleep(0.01)
                except BaseException as e:
                    open(os.path.join(MARKERS, 'interrupted-%d' % threading.get_ident()), 'w').write(repr(e))
                    raise
                text = 'spun'
            elif parts[0] == 'inc':
                for _ in range(int(parts[1])):
                    uwsgi.cache_inc('n')
                    time.sleep(0)
                text = 'ok'
            elif parts[0] == 'get':
                text = str(uwsgi.cache_num('n'))
            else:
                text = path
            body = ('%s %d %s\n' % (text, os.getpid(), environ['wsgi.multithread'])).encode()
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
            return [body]
        """#

        static func setUp(_ dir: TempDir) throws -> [String: String] {
            try dir.write("threads.py", app)
            try FileManager.default.createDirectory(atPath: dir.file("markers"), withIntermediateDirectories: true)
            return ["THREAD_MARKERS": dir.file("markers")]
        }

        /// Sends each target on its own connection at once, from its own thread; the replies in order.
        static func concurrently(_ socket: String, _ targets: [String], timeout: Double = 30) -> [Result<HTTPReply, Error>] {
            let results = ResultBox(count: targets.count)
            onThreads(targets.count) { i in
                do {
                    let c = try Client(.unix(socket))
                    try c.send(httpGet(targets[i]))
                    results.set(i, .success(try c.readResponse(timeout: timeout)))
                } catch {
                    results.set(i, .failure(error))
                }
            }
            return results.all
        }

        /// Runs `body(0..<count)` each on its own thread, all at once (concurrentPerform runs only as many
        /// at a time as there are cores), and waits for them all.
        static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
            let done = DispatchSemaphore(value: 0)
            for i in 0..<count {
                let t = Thread {
                    body(i)
                    done.signal()
                }
                t.start()
            }
            for _ in 0..<count { done.wait() }
        }

        static func markers(_ dir: TempDir, _ prefix: String) -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("markers"))) ?? []).filter { $0.hasPrefix(prefix) }.count
        }

        /// 2 workers x 4 threads hold 8 requests at once (each waits until all 8 arrived), and say
        /// wsgi.multithread; --threads 1 still serves (and says it is not multithreaded).
        @Test func eightRequestsRunAtOnceInTwoWorkersOfFourThreads() throws {
            try withPython(["--processes", "2", "--threads", "4", "--wsgi-file", "{dir}/threads.py"], setUp: Self.setUp) { s, _ throws in
                let socket = s.socket!
                let replies = Self.concurrently(socket, (0..<8).map { _ in "/barrier/8/a" })
                var pids = Set<String>()
                for r in replies {
                    let reply = try r.get()
                    #expect(reply.status == 200)
                    let words = reply.text.split(separator: " ")
                    #expect(words.first == "met", "a request did not meet the other 7: \(reply.text)")
                    #expect(words.last == "True\n")
                    if words.count > 1 { pids.insert(String(words[1])) }
                }
                #expect(pids.count == 2, "both workers served: \(pids)")
            }
            try withPython(["--processes", "1", "--threads", "1", "--wsgi-file", "{dir}/threads.py"], setUp: Self.setUp) { s, _ throws in
                let r = try s.get("/x")
                #expect(r.status == 200 && r.text.hasSuffix(" False\n"), "\(r.text)")
            }
        }

        /// HUP (and then TERM) while every thread of every worker holds a request: all are answered 200,
        /// and after HUP new workers serve.
        @Test func hupAndTermWithAllThreadsBusyAnswerEveryRequest() throws {
            for sig in [SIGHUP, SIGTERM] {
                try withPython(["--processes", "2", "--threads", "4", "--wsgi-file", "{dir}/threads.py", "--stats", "{dir}/st"],
                               setUp: Self.setUp) { s, dir throws in
                    let socket = s.socket!
                    let before = s.waitWorkers(2)
                    let group = DispatchGroup()
                    nonisolated(unsafe) var replies: [Result<HTTPReply, Error>] = []
                    DispatchQueue.global().async(group: group) { replies = Self.concurrently(socket, (0..<8).map { _ in "/hold" }) }
                    #expect(waitUntil(15) { Self.markers(dir, "hold-") == 8 }, "8 requests in flight")
                    if sig == SIGHUP {
                        // --stats shows each worker's threads ("cores"), every one busy with its request.
                        let stats = try JSONSerialization.jsonObject(with: Data(try rawStats(dir.file("st")).utf8)) as? [String: Any]
                        let workers = stats?["workers"] as? [[String: Any]] ?? []
                        #expect(workers.count == 2)
                        for w in workers {
                            let cores = w["cores"] as? [[String: Any]] ?? []
                            #expect(cores.count == 4 && cores.allSatisfy { $0["status"] as? String == "busy" && $0["request"] as? String == "GET /hold" },
                                    "worker \(w["id"] ?? "?"): \(cores)")
                            #expect(w["status"] as? String == "busy")
                        }
                    }
                    s.signal(sig)
                    if sig == SIGHUP {
                        #expect(s.waitForLog("retiring worker 2"), "the old workers retire with their requests in flight")
                    } else {
                        // The listener is gone once the master handled TERM: the requests are still held.
                        #expect(waitUntil(10) { !fileExists(s.socket!) })
                    }
                    try dir.write("markers/release", "")
                    group.wait()
                    #expect(replies.count == 8)
                    for r in replies {
                        switch r {
                        case .success(let reply): #expect(reply.status == 200 && reply.text.hasPrefix("released"), "\(reply.status) \(reply.text)")
                        case .failure(let e): Issue.record("a request in flight at \(sig) failed: \(e)")
                        }
                    }
                    if sig == SIGHUP {
                        let after = s.waitWorkers(2) { Set($0).isDisjoint(with: before) }
                        #expect(Set(after).isDisjoint(with: before), "new workers after HUP: \(before) -> \(after)")
                        #expect(try s.get("/after").status == 200)
                    } else {
                        #expect(s.waitExit(timeout: 10) == 0, "TERM: the master exits 0 once every request is answered")
                    }
                }
            }
        }

        /// harakiri in one thread while three others serve: only that request is interrupted (500,
        /// HarakiriInterrupt in its own thread), the others finish with 200, the worker is replaced.
        @Test func harakiriInterruptsOnlyItsOwnThread() throws {
            let args = ["--processes", "1", "--threads", "4", "--wsgi-file", "{dir}/threads.py", "--harakiri", "1",
                        "--harakiri-graceful-timeout", "5"]
            try withPython(args, setUp: Self.setUp) { s, dir throws in
                let socket = s.socket!
                let worker = try #require(s.waitWorkers(1).first)
                let group = DispatchGroup()
                nonisolated(unsafe) var spin: Result<HTTPReply, Error>?
                nonisolated(unsafe) var others: [Result<HTTPReply, Error>] = []
                DispatchQueue.global().async(group: group) { spin = Self.concurrently(socket, ["/spin/20"])[0] }
                #expect(waitUntil(10) { Self.markers(dir, "spinning-") == 1 })
                // The other three start 300 ms later: their deadlines are not due when the graceful signal lands.
                usleep(300_000)
                DispatchQueue.global().async(group: group) { others = Self.concurrently(socket, (0..<3).map { _ in "/hold" }) }
                #expect(waitUntil(10) { Self.markers(dir, "hold-") == 3 })
                #expect(s.waitForLog("HARAKIRI worker 1 (pid \(worker))", timeout: 10))
                #expect(waitUntil(10) { Self.markers(dir, "interrupted-") == 1 }, "the spinning request was interrupted")
                try dir.write("markers/release", "")
                group.wait()
                #expect((try? spin?.get().status) == 500, "the harakiri'd request gets a 500")
                #expect(others.count == 3)
                for r in others {
                    let reply = try r.get()
                    #expect(reply.status == 200 && reply.text.hasPrefix("released"), "\(reply.status) \(reply.text)")
                }
                #expect(s.log.contains("HarakiriInterrupt: request stopped by harakiri"))
                #expect(waitUntil(10) { !isAlive(worker) }, "the harakiri'd worker ends")
                #expect(!s.log.contains("SIGKILL"), "it ended by itself once its threads were done, before the grace ran out")
                #expect(try s.get("/next").status == 200)
            }
        }

        /// A flood of connections that send nothing (a slow-loris opening) does not keep a request from a
        /// threaded worker: they are taken from the listen queue at once, not a few per wake-up.
        @Test func idleConnectionFloodDoesNotDelayARequest() throws {
            try withPython(["--processes", "1", "--threads", "2", "--wsgi-file", "{dir}/threads.py"], setUp: Self.setUp) { s, _ throws in
                var idle: [Client] = []
                for _ in 0..<600 { idle.append(try s.connect()) }
                let started = Date()
                let r = try s.get("/after-flood", timeout: 3)
                #expect(r.status == 200 && r.text.hasPrefix("/after-flood "), "\(r.status) \(r.text)")
                #expect(Date().timeIntervalSince(started) < 2, "answered after \(Date().timeIntervalSince(started)) s behind 600 idle connections")
                idle.removeAll()
            }
        }

        /// cache_inc from 4 threads x 2 workers: no increment lost.
        @Test func cacheIncrementsFromEightThreadsLoseNothing() throws {
            let args = ["--processes", "2", "--threads", "4", "--wsgi-file", "{dir}/threads.py", "--cache2", "name=default,items=16,blocksize=64"]
            try withPython(args, setUp: Self.setUp) { s, _ throws in
                let socket = s.socket!
                let replies = Self.concurrently(socket, (0..<16).map { _ in "/inc/200" })
                for r in replies { #expect((try? r.get().status) == 200) }
                let total = try s.get("/get")
                #expect(total.text.hasPrefix("3200 "), "16 requests x 200 increments: \(total.text)")
            }
        }

        /// 16 keep-alive connections x 40 requests each through 2 workers x 4 threads (pipelined pairs
        /// too): every reply is the one asked for, in order; then max-requests recycles without a failure.
        @Test func keepAliveLoadAndMaxRequests() throws {
            let args = ["--processes", "2", "--threads", "4", "--wsgi-file", "{dir}/threads.py", "--max-requests", "100"]
            try withPython(args, setUp: Self.setUp) { s, _ throws in
                let failures = FailureLog()
                let socket = s.socket!
                Self.onThreads(16) { client in
                    do {
                        var c = try Client(.unix(socket))
                        var i = 0
                        while i < 40 {
                            // Two requests in one write every fifth time: the second waits in the loop's buffer.
                            var unanswered = (i % 5 == 0 && i + 1 < 40) ? [i, i + 1] : [i]
                            try c.send(unanswered.map { httpGet("/c\(client)/r\($0)") }.joined())
                            while let k = unanswered.first {
                                let r = try c.readResponse(timeout: 20)
                                if r.status != 200 || !r.text.hasPrefix("/c\(client)/r\(k) ") {
                                    failures.add("client \(client) request \(k): \(r.status) \(r.text)")
                                }
                                unanswered.removeFirst()
                                // A retiring worker closes after this response: what was pipelined behind it
                                // goes again on a new connection (RFC 9112 section 9.3.2).
                                if r.header("Connection")?.lowercased() == "close" {
                                    c = try Client(.unix(socket))
                                    if !unanswered.isEmpty { try c.send(unanswered.map { httpGet("/c\(client)/r\($0)") }.joined()) }
                                }
                            }
                            i = i % 5 == 0 && i + 1 < 40 ? i + 2 : i + 1
                        }
                    } catch {
                        failures.add("client \(client): \(error)")
                    }
                }
                #expect(failures.all.isEmpty, "\(failures.all.prefix(5)); log:\n\(s.log.split(separator: "\n").filter { !$0.contains(" 200 ") }.suffix(40).joined(separator: "\n"))")
                #expect(s.log.contains("max-requests") || s.log.contains("max requests"), "640 requests recycled a worker at 100")
            }
        }
    }
}

/// Results filled in from several threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<HTTPReply, Error>?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<HTTPReply, Error>) { lock.lock(); items[i] = r; lock.unlock() }
    var all: [Result<HTTPReply, Error>] {
        lock.lock()
        defer { lock.unlock() }
        return items.map { $0 ?? .failure(TestFailure("no result")) }
    }
}
