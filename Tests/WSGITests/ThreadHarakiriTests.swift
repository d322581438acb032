import Foundation
import Glibc
import Testing

/// Harakiri with request threads kills the whole worker (as uWSGI does): before it dies, every request
/// of that worker whose response has not started gets a 5xx with `Connection: close`, and a connection
/// whose response started is closed. No client of the worker is left with a silent reset.
extension WSGIIntegration {
    @Suite struct ThreadHarakiri {
        /// A request stuck in C (ctypes: `CDLL` releases the GIL, `PyDLL` holds it), one waiting in Python
        /// with no response yet, one whose response has started and then waits.
        static let app = #"""
        import os, time, threading, ctypes

        MARKERS = os.environ['THREAD_MARKERS']
        libc = ctypes.CDLL(None)
        pylibc = ctypes.PyDLL(None)

        def mark(name):
            open(os.path.join(MARKERS, '%s-%d' % (name, threading.get_ident())), 'w').close()

        def wait_release(limit):
            end = time.time() + limit
            while time.time() < end and not os.path.exists(os.path.join(MARKERS, 'release')):
                time.sleep(0.01)

        def application(environ, start_response):
            parts = environ['PATH_INFO'].strip('/').split('/')
            if parts[0] == 'stuck':
                mark('stuck')
                libc.sleep(int(parts[1]))
            elif parts[0] == 'stuckgil':
                mark('stuck')
                pylibc.sleep(int(parts[1]))
            elif parts[0] == 'wait':
                mark('wait')
                wait_release(20)
            elif parts[0] == 'stream':
                def body():
                    yield b'first\n'
                    mark('streaming')
                    wait_release(20)
                    yield b'last\n'
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return body()
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
            return [b'done\n']
        """#

        static func setUp(_ dir: TempDir) throws -> [String: String] {
            try dir.write("stuck.py", app)
            try FileManager.default.createDirectory(atPath: dir.file("markers"), withIntermediateDirectories: true)
            return ["THREAD_MARKERS": dir.file("markers")]
        }

        static func markers(_ dir: TempDir, _ prefix: String) -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("markers"))) ?? []).filter { $0.hasPrefix(prefix) }.count
        }

        /// Sends `target` on its own connection and reads the reply on a thread of its own.
        final class Pending: @unchecked Sendable {
            let client: Client
            private let done = DispatchSemaphore(value: 0)
            private var result: Result<HTTPReply, Error>?
            init(_ socket: String, _ target: String, timeout: Double = 15) throws {
                client = try Client(.unix(socket))
                try client.send(httpGet(target))
                Thread { [self] in
                    do { result = .success(try client.readResponse(timeout: timeout)) } catch { result = .failure(error) }
                    done.signal()
                }.start()
            }
            func reply() -> Result<HTTPReply, Error> {
                done.wait()
                return result!
            }
        }

        /// A request stuck in C past the harakiri (and the grace when given) and another thread's request
        /// whose response has not started: that client gets a 5xx with `Connection: close`, not a reset, and
        /// the log names it. `stuck`: "stuck" (C, GIL released) or "stuckgil" (C holding the GIL: the other
        /// request waits for the GIL, and so does the worker's main thread once it runs Python's handlers).
        /// Without a grace the kill comes at the stuck request's deadline: the other one, not yet past its
        /// own, gets a 503 and the stuck one a 504; with a grace both are past their deadlines (504).
        func otherThreadGets5xx(_ extra: [String], stuck: String) throws {
            let args = ["--processes", "1", "--threads", "2", "--wsgi-file", "{dir}/stuck.py", "--harakiri", "1",
                        "--stats", "{dir}/st"] + extra
            let graceful = !extra.isEmpty
            try withPython(args, setUp: Self.setUp) { s, dir throws in
                let worker = try #require(s.waitWorkers(1).first)
                let stuckOne = try Pending(s.socket!, "/\(stuck)/30")
                #expect(waitUntil(10) { Self.markers(dir, "stuck-") == 1 })
                // 300 ms later: the other request is not past its own deadline when the graceful signal lands.
                usleep(300_000)
                let waiting = try Pending(s.socket!, "/wait")
                // Both threads hold their request (the second may be waiting for the GIL, before any marker).
                #expect(waitUntil(10) {
                    let cores = (try? readStats(dir.file("st"))).map(statsWorkers)?.first?["cores"] as? [[String: Any]] ?? []
                    return cores.filter { $0["status"] as? String == "busy" }.count == 2
                }, "both requests in flight")
                // A third request finds both threads taken: queued in the worker (answered 503 before the kill)
                // or left in the listen queue (served by the replacement). Never lost.
                let third = try Pending(s.socket!, "/quick")
                let started = monotonicSeconds()
                var waitedAnswered = true
                switch waiting.reply() {
                case .success(let reply):
                    // With a grace, a loaded machine may run the graceful handler after the other request's own
                    // deadline too: HarakiriInterrupt then gives it a 500 (it was overdue as well).
                    let expected = graceful ? [504, 500] : [503]
                    #expect(expected.contains(reply.status), "the other thread's request: \(reply.status) \(reply.text)")
                    waitedAnswered = reply.status != 500
                    #expect(!reply.keepAlive, "a 5xx from a worker about to die says Connection: close")
                case .failure(let e):
                    Issue.record("the other thread's request was lost when the worker was killed: \(e)\nlog:\n\(s.log)")
                }
                switch stuckOne.reply() {
                case .success(let reply): #expect(reply.status == 504, "the stuck request: \(reply.status)")
                case .failure(let e): Issue.record("the stuck request got no answer: \(e)")
                }
                switch third.reply() {
                case .success(let reply): #expect(reply.status == 503 || reply.status == 200, "the third request: \(reply.status)")
                case .failure(let e): Issue.record("the request waiting for a thread was lost: \(e)\nlog:\n\(s.log)")
                }
                #expect(monotonicSeconds() - started < 8, "answered before the kill, not after a client timeout")
                #expect(waitUntil(10) { !isAlive(worker) }, "the stuck worker is killed")
                #expect(!waitedAnswered || s.log.contains("GET /wait (thread"), "the log names the request cut by the harakiri:\n\(s.log)")
                #expect(s.waitForLog("HARAKIRI worker 1 (pid \(worker)): GET /\(stuck)/30"), "the master's harakiri was the stuck request's")
                #expect(try s.get("/next").status == 200)
            }
        }

        @Test func gracefulTimeoutStuckInC() throws {
            try otherThreadGets5xx(["--harakiri-graceful-timeout", "1"], stuck: "stuck")
        }

        @Test func gracefulTimeoutStuckInCHoldingTheGIL() throws {
            try otherThreadGets5xx(["--harakiri-graceful-timeout", "1"], stuck: "stuckgil")
        }

        @Test func harakiriOnlyStuckInC() throws {
            try otherThreadGets5xx([], stuck: "stuck")
        }

        @Test func harakiriOnlyStuckInCHoldingTheGIL() throws {
            try otherThreadGets5xx([], stuck: "stuckgil")
        }

        /// A thread whose response has started when the worker is killed: its client gets what was sent
        /// and then an end of file, not a hang.
        @Test func startedResponseIsClosed() throws {
            for extra in [[], ["--harakiri-graceful-timeout", "1"]] {
                let args = ["--processes", "1", "--threads", "2", "--wsgi-file", "{dir}/stuck.py", "--harakiri", "1"] + extra
                try withPython(args, setUp: Self.setUp) { s, dir throws in
                    let streaming = try Client(.unix(s.socket!))
                    try streaming.send(httpGet("/stream"))
                    #expect(waitUntil(10) { Self.markers(dir, "streaming-") == 1 })
                    let stuckOne = try Pending(s.socket!, "/stuck/30")
                    #expect(waitUntil(10) { Self.markers(dir, "stuck-") == 1 })
                    let bytes = String(decoding: try streaming.readToEnd(timeout: 8), as: UTF8.self)
                    #expect(bytes.hasPrefix("HTTP/1.1 200") && bytes.contains("first\n") && !bytes.contains("last\n"), "\(bytes)")
                    _ = stuckOne.reply()
                    #expect(try s.get("/next").status == 200)
                }
            }
        }
    }
}
