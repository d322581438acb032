import Foundation
import Glibc
import Testing

/// Issue 19, the process side: the interim-response rule and start-up failures of hosted apps.
extension WSGIIntegration {
    @Suite struct ProcessSide {
        /// An app that starts its response (write()) and then reads wsgi.input, for a client that sent
        /// `Expect: 100-continue` with a chunked body: an interim `100 Continue` written after the response
        /// head would land inside the chunked body. None may be sent once the response has started.
        @Test(arguments: ["write", "yield"])
        func noInterimResponseOnceTheResponseHasStarted(style: String) throws {
            let app = """
            def application(environ, start_response):
                if '\(style)' == 'write':
                    write = start_response('200 OK', [('Content-Type', 'text/plain')])
                    write(b'started;')
                    body = environ['wsgi.input'].read()
                    return [b'read ' + str(len(body)).encode()]
                def gen():
                    yield b'started;'
                    body = environ['wsgi.input'].read()
                    yield b'read ' + str(len(body)).encode()
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return gen()
            """
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/app.py", "--body-timeout", "3"], setUp: { dir in
                try dir.write("app.py", app)
                return [:]
            }) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                // A real client (curl) waits for 100 Continue or the final response, then sends the body.
                let head = c.fill(until: monotonicSeconds() + 5)
                #expect(head, "the response started")
                try c.send("5\r\nhello\r\n0\r\n\r\n")
                let raw = String(decoding: try c.readToEnd(timeout: 10), as: UTF8.self)
                #expect(!raw.contains("100 Continue"), "no interim response after the final one started:\n\(raw)")
                #expect(raw.hasPrefix("HTTP/1.1 200"), "\(raw)")
                #expect(raw.contains("started;") && raw.contains("read 5"), "\(raw)")
            }
        }

        /// The same client against an app that reads before it starts its response: 100 Continue is owed.
        @Test func interimResponseBeforeTheResponseStarts() throws {
            let app = """
            def application(environ, start_response):
                body = environ['wsgi.input'].read()
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [b'read ' + str(len(body)).encode()]
            """
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/app.py"], setUp: { dir in
                try dir.write("app.py", app)
                return [:]
            }) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
                #expect(c.fill(until: monotonicSeconds() + 5))
                #expect(String(decoding: c.buffer, as: UTF8.self).hasPrefix("HTTP/1.1 100 Continue\r\n\r\n"))
                try c.send("hello")
                let raw = String(decoding: try c.readToEnd(timeout: 10), as: UTF8.self)
                #expect(raw.contains("HTTP/1.1 200") && raw.hasSuffix("read 5"), "\(raw)")
            }
        }

        /// An app that ends the process at import (os._exit, posix._exit, C exit() through ctypes): swsgi
        /// must stop with a non-zero status and one line saying why, with and without --lazy-apps; never
        /// exit 0 in silence, never crash-loop while listening.
        @Test(arguments: [
            ("import os\nos._exit(0)\n", false), ("import os\nos._exit(0)\n", true),
            ("import posix\nposix._exit(0)\n", false), ("import posix\nposix._exit(3)\n", true),
            ("import ctypes\nctypes.CDLL(None).exit(0)\n", false), ("import ctypes\nctypes.CDLL(None).exit(0)\n", true),
            ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", true),
        ])
        func appEndingTheProcessAtImportStopsSwsgi(source: String, lazy: Bool) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", source + "def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
            var args = ["--processes", "2", "--wsgi-file", dir.file("app.py")]
            if lazy { args.append("--lazy-apps") }
            let r = try runToExit(args, environment: PythonUnderTest.debian.environment, socket: "s", in: dir, timeout: 15)
            #expect(r.status != 0, "exit status \(r.status); log:\n\(r.output)")
            #expect(r.output.contains("app.py") || r.output.contains("while loading the app") || r.output.contains("loading the app"),
                    "one line says why:\n\(r.output)")
            #expect(!fileExists(dir.file("s")), "nothing left listening")
            // No crash loop: one (or a few, for the workers forked together) attempts, not dozens.
            let attempts = r.output.components(separatedBy: "respawn").count - 1
            #expect(attempts <= 2, "respawns: \(attempts); log:\n\(r.output)")
        }
    }
}

extension WSGIIntegration.ProcessSide {
    /// A Python app under harakiri with TERM as its graceful signal (the default): a TERM to the whole
    /// process group is a stop, so the requests in hand finish instead of unwinding with HarakiriInterrupt.
    @Test func groupTermFinishesPythonRequestsWhenTermIsHarakirisSignal() throws {
        let app = """
        import time
        def application(environ, start_response):
            time.sleep(1)
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'slept']
        """
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", app)
        let s = try Server(["--processes", "2", "--wsgi-file", dir.file("app.py"), "--harakiri", "20",
                            "--harakiri-graceful-timeout", "3", "--stats", dir.file("stats")],
                           dir: dir, environment: PythonUnderTest.debian.environment, newProcessGroup: true)
        defer { s.stop() }
        var clients: [Client] = []
        for _ in 0..<3 {
            let c = try s.connect()
            try c.send(httpGet("/"))
            clients.append(c)
        }
        #expect(waitUntil(5) { statsWorkers((try? readStats(dir.file("stats"))) ?? [:]).filter { $0["status"] as? String == "busy" }.count == 2 })
        s.signalGroup(SIGTERM)
        for (i, c) in clients.enumerated() {
            let r = try c.readResponse(timeout: 10)
            #expect(r.status == 200 && r.text == "slept", "client \(i): \(r.status) \(r.text)")
        }
        #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
        #expect(!s.log.contains("HarakiriInterrupt"), "\(s.log)")
    }

    /// --evil-reload-on-rss stops a busy worker near its limit (uWSGI SIGKILLs it from the master), not
    /// after its request ends: an app growing 10 MiB every 50 ms is stopped well before twice the limit.
    @Test func evilReloadOnRSSStopsABusyWorkerNearItsLimit() throws {
        let app = """
        import os
        def rss():
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        def application(environ, start_response):
            import time
            hold = []
            for i in range(60):
                hold.append(b'x' * (10 << 20))
                with open(os.environ['RSS_LOG'], 'a') as f:
                    f.write('%d\\n' % rss())
                time.sleep(0.05)
            start_response('200 OK', [])
            return [b'grew']
        """
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", app)
        var env = PythonUnderTest.debian.environment
        env["RSS_LOG"] = dir.file("rss.log")
        let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py"), "--evil-reload-on-rss", "150"],
                           dir: dir, environment: env)
        defer { s.stop() }
        let worker = try #require(s.waitWorkers(1).first)
        let c = try s.connect()
        try c.send(httpGet("/"))
        let r = try? c.readResponse(timeout: 15)
        #expect(r?.status != 200, "the request was cut, not finished at 600 MiB")
        #expect(waitUntil(5) { !isAlive(worker) })
        let samples = ((try? String(contentsOfFile: dir.file("rss.log"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) }
        let peak = samples.max() ?? 0
        #expect(peak < 300 << 20, "peak RSS \(peak >> 20) MiB for --evil-reload-on-rss 150; log:\n\(s.log)")
        #expect(s.log.contains("evil-reload-on-rss"), "\(s.log)")
        let next = s.waitWorkers(1) { !$0.contains(worker) }
        #expect(next.count == 1, "a replacement serves")
    }
}

extension WSGIIntegration.ProcessSide {
    /// A hostile operator's TERM (or a HUP) while the master imports a slow app: it used to kill the master
    /// by TERM's default action, silently, leaving its temporary socket behind. Now: one line, a clean stop,
    /// nothing left in the folder; a HUP is noted and swsgi serves.
    @Test(arguments: [SIGTERM, SIGHUP, SIGINT])
    func signalDuringTheAppsImport(sig: Int32) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "import time\ntime.sleep(1.5)\ndef application(e, s):\n    s('200 OK', [])\n    return [b'up']\n")
        let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py")], dir: dir,
                           environment: PythonUnderTest.debian.environment, ready: false)
        defer { s.stop() }
        // The import has started once Python is loaded: the master maps libpython.
        #expect(waitUntil(10) { ((try? String(contentsOfFile: "/proc/\(s.pid)/maps", encoding: .utf8)) ?? "").contains("libpython") })
        s.signal(sig)
        if sig == SIGHUP {
            try s.waitReady()
            #expect(try s.get("/").text == "up")
            #expect(s.log.contains("SIGHUP during start-up"), "\(s.log)")
            return
        }
        #expect(s.waitExit(timeout: 10) == 0, "\(s.log)")
        // (From the thread that waits for a stop during the import, or from the check after it.)
        let name = sig == SIGTERM ? "SIGTERM" : "SIGINT"
        #expect(s.log.contains("\(name) during the app's import: stopped before serving") || s.log.contains("\(name) during start-up: stopped before serving"),
                "\(s.log)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        #expect(left.allSatisfy { !$0.hasPrefix(".s") && $0 != "s" }, "no socket left: \(left)")
    }
}

extension WSGIIntegration.ProcessSide {
    /// A TERM to the whole group while --lazy-apps workers are still importing: the workers keep it until
    /// the app is up, then leave; nothing counts as an app that cannot load (no status 22), swsgi exits 0.
    @Test func groupTermWhileLazyWorkersImport() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "import time\ntime.sleep(1)\ndef application(e, s):\n    s('200 OK', [])\n    return [b'up']\n")
        let s = try Server(["--processes", "2", "--lazy-apps", "--wsgi-file", dir.file("app.py")], dir: dir,
                           environment: PythonUnderTest.debian.environment, ready: false, newProcessGroup: true)
        defer { s.stop() }
        #expect(s.waitForLog("listening on"))
        _ = s.waitWorkers(2)
        s.signalGroup(SIGTERM)
        #expect(s.waitExit(timeout: 15) == 0, "\(s.log)")
        #expect(!s.log.contains("load the app"), "\(s.log)")
    }
}

extension WSGIIntegration.ProcessSide {
    /// Harakiri's graceful signal left at TERM still reaches a Python app's request: the worker's TERM
    /// handler sees the master's mark on the overdue request and runs Python's handler, which unwinds it.
    @Test func harakiriWithTermStillUnwindsAPythonRequest() throws {
        let app = """
        import time
        def application(environ, start_response):
            try:
                time.sleep(10)
            finally:
                open(environ['PROBE_MARK'] if 'PROBE_MARK' in environ else '/dev/null', 'a').close()
            start_response('200 OK', [])
            return [b'slept']
        """
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", app)
        let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py"), "--harakiri", "1",
                            "--harakiri-graceful-timeout", "4"], dir: dir, environment: PythonUnderTest.debian.environment)
        defer { s.stop() }
        let worker = try #require(s.waitWorkers(1).first)
        let t0 = monotonicSeconds()
        let r = try s.get("/", timeout: 10)
        let took = monotonicSeconds() - t0
        #expect(r.status == 500, "the request unwound (HarakiriInterrupt): \(r.status)")
        #expect(took < 3.5, "before SIGKILL at 1 + 4 s: \(took) s")
        #expect(s.waitForLog("HARAKIRI worker"))
        #expect(waitUntil(10) { !isAlive(worker) })
        #expect(!s.log.contains("whole process group") && !s.log.contains("SIGTERM to the worker"), "\(s.log)")
    }
}

extension WSGIIntegration.ProcessSide {
    /// A group TERM while every single-threaded worker is in a long request is told as one at once (found by an
    /// attack): the worker told the master from its loop, after the request, so a request longer than
    /// --worker-reload-mercy made a group TERM look like a TERM to the master alone.
    @Test func aGroupTERMIsToldWhileTheWorkersAreBusy() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "import time\ndef application(environ, start_response):\n    time.sleep(4)\n    start_response('200 OK', [])\n    return [b'slept']\n")
        let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py"), "--stats", dir.file("stats")],
                           dir: dir, environment: PythonUnderTest.debian.environment, newProcessGroup: true)
        defer { s.stop() }
        let c = try s.connect()
        try c.send(httpGet("/"))
        #expect(waitUntil(5) { statsWorkers((try? readStats(dir.file("stats"))) ?? [:]).contains { $0["status"] as? String == "busy" } })
        let sent = monotonicSeconds()
        s.signalGroup(SIGTERM)
        #expect(s.waitForLog("SIGTERM reached the workers too", timeout: 10))
        #expect(monotonicSeconds() - sent < 2, "told \(monotonicSeconds() - sent) s after the TERM (the request runs 4 s):\n\(s.log)")
        let r = try c.readResponse(timeout: 10)
        #expect(r.status == 200 && r.text == "slept")
        #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
    }
}
