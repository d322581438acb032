// Regression tests for the outside review of issue 11 (each failed before its fix).
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// An app exercising the master's signal state, write() and environ bytes.
    static let reviewApp = #"""
import os, signal, sys, threading, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
MARKERS = os.environ['PROBE_MARKERS']

def marker(name):
    return os.path.exists(os.path.join(MARKERS, name))

def touch(name):
    with open(os.path.join(MARKERS, name), 'w') as f:
        f.write('1')

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    if path == '/write-then-wait':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'first;')
        deadline = time.time() + 10
        while not marker('go') and time.time() < deadline:
            time.sleep(0.01)
        return [b'last']
    if path.startswith('/gen-write'):
        headers = [('Content-Type', 'text/plain')]
        if path.endswith('-length'):
            headers.append(('Content-Length', '4'))
        write = start_response('200 OK', headers)
        def gen():
            write(b'A')
            yield b'B'
            write(b'C')
            yield b'D'
        return gen()
    if path == '/write-gil':
        write = start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        def background():
            time.sleep(0.2)
            touch('thread-ran')
        threading.Thread(target=background, daemon=True).start()
        write(b'x' * (16 << 20))
        return []
    if path == '/fork':
        child = os.fork()
        if child:
            os.waitpid(child, 0)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    if path == '/write-stalled':
        write = start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        try:
            for _ in range(256):
                write(b'x' * (1 << 20))
        finally:
            touch('write-finally')
        return []
    if path == '/yield-stalled':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        def gen():
            try:
                for _ in range(256):
                    yield b'x' * (1 << 20)
            finally:
                touch('yield-finally')
        return gen()
    if path.startswith('/environ'):
        start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])
        return [repr((environ['PATH_INFO'], environ.get('HTTP_X_LATIN', ''))).encode('unicode_escape')]
    start_response('404 Not Found', [])
    return [b'']
"""#

    static func writeReviewApp(_ dir: TempDir) throws -> [String: String] {
        var env = try writeProbe(dir)
        try dir.write("review.py", reviewApp)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env
    }

    @Suite struct ReviewFixes {
        static let args = ["--processes", "1", "--wsgi-file", "{dir}/review.py"]

        /// Started with INT, QUIT and HUP ignored (a shell's `&`, nohup): not the app's doing, so no warning
        /// blames it, and the master still answers them as its own (QUIT stops it).
        @Test func inheritedIgnoredSignalsAreNotBlamedOnTheApp() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            var env = try writeProbe(dir)
            env.merge(PythonUnderTest.debian.environment) { _, b in b }
            let s = try Server(["--processes", "1", "--wsgi-file", dir.file("probe.py")], dir: dir, socket: "s", environment: env,
                               shell: "trap '' INT QUIT HUP; exec \"$0\" \"$@\"")
            defer { s.stop() }
            #expect(try s.get("/").status == 200)
            #expect(!s.log.contains("changed the master's"), "\(s.log)")
            s.signal(SIGQUIT)
            #expect(waitUntil(10) { !s.isRunning }, "SIGQUIT stops the master: \(s.log)")
        }

        /// SIGCHLD set to SIG_IGN at import must not make the kernel reap workers behind the master's back.
        @Test func appIgnoringSIGCHLDAtImportDoesNotDisableTheMaster() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, _ throws in
                #expect(s.waitForLog("changed the master's SIGCHLD"), "the master warns: \(s.log)")
                let first = try #require(s.waitWorkers(1).first)
                #expect(String(decoding: try s.get("/pid").body, as: UTF8.self) == "\(first)")
                kill(first, SIGKILL)  // our own server's worker
                let next = s.waitWorkers(1, where: { $0 != [first] })
                #expect(next.count == 1 && next != [first], "a dead worker is respawned")
                #expect(try s.get("/pid").status == 200)
                s.signal(SIGTERM)
                #expect(s.waitExit(timeout: 10) == 0, "SIGTERM completes")
            }
        }

        /// write() data reaches the client while the app is still running (PEP 3333), not at its return.
        @Test func writeSendsImmediately() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, dir throws in
                let c = try s.connect()
                try c.send(httpGet("/write-then-wait"))
                let seen = waitUntil(5) {
                    _ = c.fill(until: monotonicSeconds() + 0.05)
                    return String(decoding: c.buffer, as: UTF8.self).contains("first;")
                }
                #expect(seen, "write() data arrived before the app returned: \(String(decoding: c.buffer, as: UTF8.self))")
                try dir.write("markers/go", "1")
                let r = try c.readResponse(timeout: 10)
                #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "first;last")
            }
        }

        /// write() inside the generator before (and between) yields keeps its order; with and without Content-Length.
        @Test func writeInsideTheGeneratorKeepsOrder() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, _ throws in
                for path in ["/gen-write", "/gen-write-length"] {
                    let c = try s.connect()
                    try c.send(httpGet(path))
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "ABCD", "\(path)")
                    // The connection stays usable: the framing was right.
                    try c.send(httpGet("/pid"))
                    #expect(try c.readResponse(timeout: 10).status == 200, "\(path): keep-alive after")
                }
            }
        }

        /// write() blocked on a client that does not read must not hold the GIL.
        @Test func writeReleasesTheGILWhileBlocked() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, dir throws in
                let c = try s.connect()
                try c.send(httpGet("/write-gil"))
                #expect(waitUntil(5) { markerExists(dir, "thread-ran") }, "the app's thread ran while write() waited")
                let r = try c.readResponse(timeout: 20)
                #expect(r.status == 200 && r.body.count == 16 << 20)
            }
        }

        /// harakiri's graceful signal reaches Python while the worker is blocked writing to a client that does not
        /// read: the app's finally (write()) and the iterable's close() (yield) run before the SIGKILL.
        @Test func harakiriGracefulSignalUnblocksAStalledWrite() throws {
            let args = Self.args + ["--harakiri", "1", "--harakiri-graceful-signal", "SIGSYS", "--harakiri-graceful-timeout", "3"]
            try withPython(args, setUp: WSGIIntegration.writeReviewApp) { s, dir throws in
                for (round, (path, marker)) in [("/write-stalled", "write-finally"), ("/yield-stalled", "yield-finally")].enumerated() {
                    let worker = try #require(s.waitWorkers(1).first)
                    let c = try s.connect()
                    try c.send(httpGet(path))  // and never read
                    #expect(waitUntil(10) { markerExists(dir, marker) }, "\(path): the app's cleanup ran; log:\n\(s.log)")
                    #expect(waitUntil(10) { !isAlive(worker) }, "the worker ends")
                    #expect(s.waitForLog("HARAKIRI worker", count: round + 1))
                    c.close()
                    #expect(try s.get("/pid").status == 200, "a new worker serves")
                }
            }
        }

        /// A child the app forks that returns from application() ends there instead of serving as a rogue worker.
        @Test func aForkedChildReturningFromTheAppExits() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, _ throws in
                let worker = try #require(s.waitWorkers(1).first)
                let r = try s.get("/fork", timeout: 10)
                #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "\(worker)", "the worker answers, not its child")
                #expect(s.waitForLog("forked by the app"), "\(s.log)")
                #expect(childPIDs(of: worker).isEmpty && s.workers == [worker])
                #expect(try s.get("/pid").status == 200)
            }
        }

        /// --python-lib naming a FIFO hung in dlopen forever; a directory or device is no library either.
        @Test func pythonLibThatIsNotARegularFileIsRefused() throws {
            let r = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--python-lib", "{dir}/fifo"], setUp: { dir in
                guard mkfifo(dir.file("fifo"), 0o600) == 0 else { throw TestFailure("mkfifo: \(errno)") }
                return try writeProbe(dir)
            })
            #expect(r.status == 1 && r.log.contains("not a regular file") && !r.bound, "\(r.log)")
            let d = try runPythonToExit(["--wsgi-file", "{dir}/probe.py", "--python-lib", "/dev/null"])
            #expect(d.status == 1 && d.log.contains("not a regular file"), "\(d.log)")
        }

        /// Request bytes reach the environ byte for byte as latin-1, on both protocols.
        @Test func nonUTF8BytesAreLatin1InTheEnviron() throws {
            try withPython(Self.args, setUp: WSGIIntegration.writeReviewApp) { s, _ throws in
                let c = try s.connect()
                var req = Array("GET /environ HTTP/1.1\r\nHost: t\r\nX-Latin: caf".utf8)
                req += [0xE9] + Array("\r\n\r\n".utf8)
                try c.send(req)
                let r = try c.readResponse(timeout: 10)
                #expect(String(decoding: r.body, as: UTF8.self) == #"('/environ', 'caf\xe9')"#, "HTTP header value")
            }
        }

        /// The uwsgi protocol's variables (nginx sends PATH_INFO percent-decoded, raw bytes) reach the environ as latin-1.
        @Test func uwsgiVariablesAreLatin1InTheEnviron() throws {
            try withPython(Self.args + ["--uwsgi-socket", "{dir}/u.sock"], socket: nil, setUp: WSGIIntegration.writeReviewApp) { s, dir throws in
                func pair(_ k: String, _ v: [UInt8]) -> [UInt8] {
                    let kb = Array(k.utf8)
                    return [UInt8(kb.count & 0xff), UInt8(kb.count >> 8)] + kb + [UInt8(v.count & 0xff), UInt8(v.count >> 8)] + v
                }
                let vars = pair("REQUEST_METHOD", Array("GET".utf8)) + pair("REQUEST_URI", Array("/environ/caf%E9".utf8))
                    + pair("PATH_INFO", Array("/environ/caf".utf8) + [0xE9]) + pair("HTTP_X_LATIN", Array("caf".utf8) + [0xE9])
                let c = try Client(.unix(dir.file("u.sock")))
                try c.send([0, UInt8(vars.count & 0xff), UInt8(vars.count >> 8), 0] + vars)
                let r = try c.readResponse(timeout: 10)
                #expect(String(decoding: r.body, as: UTF8.self) == #"('/environ/caf\xe9', 'caf\xe9')"#)
            }
        }
    }
}
