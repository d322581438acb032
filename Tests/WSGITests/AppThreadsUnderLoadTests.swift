import Foundation
import Glibc
import Testing

/// The app's own threads run while a worker serving one request at a time is saturated, and a thread of the
/// app that writes a response never holds up the worker. (A worker that kept the GIL across a batch of requests
/// was tried and dropped for freezing them: see `Interpreter.withGIL`.)
extension WSGIIntegration {
    @Suite struct AppThreadsUnderLoad {
        static let app = #"""
        import threading, time

        ticks = [0]
        started = []

        def tick():
            while True:
                time.sleep(0.002)
                ticks[0] += 1

        def application(environ, start_response):
            path = environ['PATH_INFO']
            if not started:
                started.append(threading.Thread(target=tick, daemon=True))
                started[0].start()
            if path == '/ticks':
                body = str(ticks[0]).encode()
            elif path == '/stream':
                # A thread of the app writes the body (write() is called from it) while this one waits.
                write = start_response('200 OK', [('Content-Type', 'application/octet-stream')])
                t = threading.Thread(target=lambda: write(b'x' * (4 << 20)))
                t.start()
                t.join()
                return []
            else:
                body = b'ok'
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
            return [body]
        """#

        static func ticks(_ s: Server) throws -> Int {
            let c = try s.connect()
            try c.send(httpGet("/ticks", headers: ["Connection: close"]))
            let r = try c.readResponse(timeout: 10)
            return Int(String(decoding: r.body, as: UTF8.self)) ?? -1
        }

        /// 8 keep-alive clients keep one worker saturated (every wait returns ready connections) for 1.5 s;
        /// the app's thread that wakes every 2 ms must keep ticking.
        @Test func theAppsThreadsRunWhileTheLoopIsSaturated() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/app.py"], setUp: { dir in
                try dir.write("app.py", Self.app)
                return [:]
            }) { s, _ throws in
                let before = try Self.ticks(s)
                #expect(before >= 0)
                var clients: [Client] = []
                for _ in 0..<8 { clients.append(try s.connect()) }
                let end = monotonicSeconds() + 1.5
                var served = 0
                while monotonicSeconds() < end {
                    for c in clients { try c.send(httpGet("/")) }
                    for c in clients {
                        let r = try c.readResponse(timeout: 10)
                        #expect(r.status == 200)
                        served += 1
                    }
                }
                let after = try Self.ticks(s)
                // Unloaded, the thread ticks about 400 times a second; starved of the GIL it would not tick at all.
                #expect(after - before >= 100, "the app's thread ticked \(after - before) times in 1.5 s beside \(served) requests")
            }
        }

        /// A thread of the app writes a 4 MiB response to a client that reads it only later (the write blocks
        /// holding the connection's I/O lock, without the GIL), while the main thread waits in join(). Then a
        /// pipelined request on the same connection: the whole body and the next answer arrive.
        @Test func aResponseWrittenByTheAppsThreadThenTheNextRequest() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/app.py"], setUp: { dir in
                try dir.write("app.py", Self.app)
                return [:]
            }) { s, _ throws in
                let c = try s.connect()
                try c.send(httpGet("/stream") + httpGet("/"))
                // (4 MiB is more than the socket buffers hold: the thread's write waits for this reader.)
                let r = try c.readResponse(timeout: 20)
                #expect(r.status == 200 && r.body.count == 4 << 20, "\(r.status) \(r.body.count) bytes")
                let next = try c.readResponse(timeout: 10)
                #expect(next.status == 200 && next.body == Array("ok".utf8))
                #expect(try Self.ticks(s) >= 0)
            }
        }
    }
}
