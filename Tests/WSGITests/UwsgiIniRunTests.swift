import Foundation
import Glibc
import Testing

/// A Flask-style factory app that shows what the config gave it.
private let factoryApp = """
    import os

    def create_app():
        def app(environ, start_response):
            body = '%s|%s|%s' % (os.environ.get('GREETING'), os.environ.get('SECOND'), environ.get('SCRIPT_NAME'))
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [body.encode()]
        return app
    """

/// A real `[uwsgi]` file run by swsgi: the config language and the options it maps take effect.
@Suite struct UwsgiIniRun {
    /// Placeholders, `%d`, `module = pkg:factory()`, two `env` lines and `http-socket = PATH` (HTTP on a
    /// Unix socket) in one file, seen from inside the app.
    @Test func placeholdersEnvFactoryAndHTTPOnAUnixSocket() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("envapp.py", factoryApp)
        try dir.write("app.ini", """
            [uwsgi]
            project = envapp
            base = %d
            chdir = %(base)
            module = %(project):create_app()
            env = GREETING=hello from env
            env = SECOND=%(project)-%(workers)
            workers = 1
            http-socket = %(base)s
            """)
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, environment: PythonUnderTest.debian.environment)
        defer { s.stop() }
        let reply = try unixGet(dir.file("s")).get()
        #expect(reply.status == 200)
        #expect(reply.body == "hello from env|envapp-1|", "\(reply.body)\n\(s.log)")
    }

    /// `logto`: every process's output goes to the file the master opened; stderr stays empty.
    @Test func logtoSendsEveryProcesssOutputToTheFile() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("envapp.py", factoryApp)
        try dir.write("app.ini", """
            [uwsgi]
            chdir = %d
            module = envapp:create_app()
            processes = 2
            http-socket = %ds
            logto = %dapp.log
            """)
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           ready: false)
        defer { s.stop() }
        let logFile = dir.file("app.log")
        func logText() -> String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
        #expect(waitUntil(15) { logText().contains("workers accepting") }, "log file: \(logText())\nstderr: \(s.log)")
        #expect(try unixGet(dir.file("s")).get().status == 200)
        #expect(waitUntil(5) { logText().contains("GET / 200") }, "the worker's request line lands in the file: \(logText())")
        #expect(!s.log.contains("workers accepting"), "nothing on stderr: \(s.log)")
    }

    /// `daemonize`: the started process exits 0, the server lives on in its own session, logs to the
    /// file and writes its own pid to the pid file; `umask` applies to what it creates.
    @Test func daemonizeDetachesLogsAndWritesItsPid() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("envapp.py", factoryApp)
        try dir.write("app.ini", """
            [uwsgi]
            chdir = %d
            module = envapp:create_app()
            processes = 1
            http-socket = %ds
            daemonize = %dd.log
            pidfile = %dd.pid
            umask = 027
            """)
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           ready: false)
        defer { s.stop() }
        #expect(s.waitExit(timeout: 10) == 0, "the started process exits 0 at once: \(s.log)")
        func pid() -> pid_t? { (try? String(contentsOfFile: dir.file("d.pid"), encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
        #expect(waitUntil(15) { pid() != nil && ((try? String(contentsOfFile: dir.file("d.log"), encoding: .utf8)) ?? "").contains("workers accepting") })
        guard let daemon = pid() else { Issue.record("no pid file; log: \((try? String(contentsOfFile: dir.file("d.log"), encoding: .utf8)) ?? "")"); return }
        // The daemon is this test's own descendant: stop it whatever happens below.
        defer {
            kill(daemon, SIGTERM)
            _ = waitUntil(10) { kill(daemon, 0) != 0 }
        }
        #expect(daemon != s.pid)
        #expect(getsid(daemon) == daemon, "a new session")
        #expect(try unixGet(dir.file("s")).get().status == 200)
        var st = stat()
        #expect(stat(dir.file("d.pid"), &st) == 0 && st.st_mode & 0o777 == 0o640, "umask 027 on a 0644 pid file: \(String(st.st_mode & 0o777, radix: 8))")
    }
}

/// An app that answers with its worker's pid, notes each call in `calls/`, and echoes the body's length.
private let pidApp = """
    import os, time

    def application(environ, start_response):
        calls = os.path.join(os.path.dirname(__file__), 'calls')
        os.makedirs(calls, exist_ok=True)
        open(os.path.join(calls, '%d-%f' % (os.getpid(), time.time())), 'w').close()
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('%d %d %s' % (os.getpid(), len(body), environ['PATH_INFO'])).encode()]
    """

/// A TCP port free a moment ago (the kernel's choice for port 0).
private func freeTCPPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: a.sin_port)
}

extension UwsgiIniRun {
    private func start(_ ini: String, in dir: TempDir, environment: [String: String] = [:]) throws -> Server {
        try dir.write("pidapp.py", pidApp)
        try dir.write("app.ini", "[uwsgi]\nwsgi-file = %dpidapp.py\nhttp-socket = %ds\n" + ini)
        var env = PythonUnderTest.debian.environment
        env.merge(environment) { _, b in b }
        return try Server(["--ini", dir.file("app.ini")], dir: dir, environment: env)
    }

    /// static-map: a file under the mount is served, `..` is refused, a missing file goes to the app.
    @Test func staticMapServesFilesRefusesTraversalAndFallsBackToTheApp() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("static/css"), withIntermediateDirectories: true)
        try dir.write("static/css/site.css", "body { color: red }\n")
        try dir.write("secret.txt", "not for you\n")
        let s = try start("processes = 1\nstatic-map = /static=%dstatic\n", in: dir)
        defer { s.stop() }
        let css = try getOnce(.unix(dir.file("s")), path: "/static/css/site.css").get()
        #expect(css.status == 200 && css.body.hasPrefix("body { color: red }"), "\(css.body)")
        for sneaky in ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/css/..%2f..%2fsecret.txt"] {
            let r = try getOnce(.unix(dir.file("s")), path: sneaky).get()
            #expect(r.status == 400 && !r.body.contains("not for you"), "\(sneaky): \(r.status) \(r.body)")
        }
        let missing = try getOnce(.unix(dir.file("s")), path: "/static/none.css").get()
        #expect(missing.status == 200 && missing.body.hasSuffix(" 0 /static/none.css"), "the app answers: \(missing.body)")
    }

    /// stats = HOST:PORT (uWSGI's usual form) answers JSON; memory-report = 1 (uWSGI reads `true` as 0, off) adds uWSGI's memory text to request lines.
    @Test func statsOnTCPAndMemoryReport() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let port = freeTCPPort()
        let s = try start("processes = 1\nstats = 127.0.0.1:\(port)\nstats-http = true\nmemory-report = 1\n", in: dir)
        defer { s.stop() }
        #expect(try unixGet(dir.file("s")).get().status == 200)
        let stats = try getOnce(.tcp(port: port), path: "/").get()
        #expect(stats.status == 200 && stats.body.contains("\"workers\":[{"), "\(stats.body)")
        #expect(s.waitForLog("{rss usage: "), "\(s.log)")
    }

    /// touch-reload: touching the file replaces every worker, and requests running meanwhile all succeed.
    @Test func touchReloadReplacesTheWorkersWithZeroFailedRequests() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("reload.txt", "")
        let s = try start("processes = 2\ntouch-reload = %dreload.txt\n", in: dir)
        defer { s.stop() }
        let before = Set(children(of: s.pid))
        let load = LoadGenerator(socket: dir.file("s"))
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(utime(dir.file("reload.txt"), nil) == 0)
        #expect(s.waitForLog("touch-reload: \(dir.file("reload.txt")) changed"), "\(s.log)")
        #expect(waitUntil(15) { let now = Set(children(of: s.pid)); return now.count == 2 && now.isDisjoint(with: before) },
                "every worker replaced: before \(before), now \(children(of: s.pid))\n\(s.log)")
        try await Task.sleep(nanoseconds: 200_000_000)
        let tally = try await load.stop()
        #expect(tally.ok > 0 && tally.failures.isEmpty, "\(tally.ok) ok, failures: \(tally.failures.prefix(5))")
    }

    /// One `touch` is one reload, as in uWSGI (which compares the file's mtime): touch(1) opens the file,
    /// sets its times (IN_ATTRIB) and closes it (IN_CLOSE_WRITE); when the master wakes between the two
    /// it reloaded twice, retiring the fresh replacements milliseconds after spawning them.
    @Test func oneTouchIsOneReload() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("reload.txt", "")
        let s = try start("processes = 1\ntouch-reload = %dreload.txt\n", in: dir)
        defer { s.stop() }
        try await Task.sleep(nanoseconds: 200_000_000)
        let fd = open(dir.file("reload.txt"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(futimens(fd, nil) == 0)
        try await Task.sleep(nanoseconds: 100_000_000)
        close(fd)
        #expect(s.waitForLog("touch-reload: \(dir.file("reload.txt")) changed"), "\(s.log)")
        try await Task.sleep(nanoseconds: 500_000_000)
        let reloads = s.log.components(separatedBy: "touch-reload: ").count - 1
        #expect(reloads == 1, "\(reloads) reloads for one touch:\n\(s.log)")
    }

    /// thunder-lock is accepted because workers wait with EPOLLEXCLUSIVE: one connection wakes one worker.
    @Test func oneConnectionWakesOneWorkerSoThunderLockIsNotNeeded() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("processes = 4\nthunder-lock = true\n", in: dir)
        defer { s.stop() }
        let workers = children(of: s.pid)
        #expect(workers.count == 4)
        func switches() -> [pid_t: Int] {
            Dictionary(uniqueKeysWithValues: workers.map { ($0, Int(statusField($0, "voluntary_ctxt_switches") ?? "") ?? -1) })
        }
        // Settle, then one connection at a time: each wakes exactly one worker.
        Thread.sleep(forTimeInterval: 0.3)
        for _ in 0..<5 {
            let before = switches()
            #expect(try unixGet(dir.file("s")).get().status == 200)
            Thread.sleep(forTimeInterval: 0.1)
            let after = switches()
            let woken = workers.filter { after[$0]! != before[$0]! }
            #expect(woken.count == 1, "woken: \(woken) of \(workers): \(before) -> \(after)")
        }
    }

    /// post-buffering: the app is called only once the whole body is in; past the in-memory size it sits
    /// in an anonymous temporary file, and nothing is left in TMPDIR.
    @Test func postBufferingCallsTheAppOnlyWithTheWholeBody() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("tmp"), withIntermediateDirectories: true)
        let s = try start("processes = 1\npost-buffering = 1024\nlimit-post = 4194304\n", in: dir, environment: ["TMPDIR": dir.file("tmp")])
        defer { s.stop() }
        let c = try HTTPConnection(dir.file("s"))
        try c.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n")
        try c.send(String(repeating: "a", count: 100_000))
        Thread.sleep(forTimeInterval: 0.4)
        let calls = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("calls"))) ?? []
        #expect(calls.isEmpty, "the app ran before the body was complete: \(calls)")
        try c.send(String(repeating: "a", count: 200_000))
        let r = try c.readResponse(timeout: 10)
        #expect(r.status == 200 && r.body.hasSuffix(" 300000 /up"), "\(r.status) \(r.body)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: dir.file("tmp"))) ?? ["?"]).isEmpty)
    }
}

extension UwsgiIniRun {
    /// Under hupwatch (HUPWATCH_GENERATION in the environment) a daemonize from the ini is refused: the
    /// server would leave the supervisor that reloads it.
    @Test func daemonizeUnderHupwatchIsRefused() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.ini", "[uwsgi]\nhttp-socket = %ds\ndaemonize = %dd.log\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: ["HUPWATCH_GENERATION": "1"], ready: false)
        defer { s.stop() }
        #expect(s.waitExit(timeout: 10) == 2, "\(s.log)")
        #expect(s.log.contains("--daemonize under hupwatch"), "\(s.log)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("d.log")))
    }
}

extension UwsgiIniRun {
    /// log-reopen: after logrotate moves the file away, a reload (SIGHUP) writes to a new file at the path.
    @Test func logReopenWritesToTheNewFileAfterAReload() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("envapp.py", factoryApp)
        try dir.write("app.ini", "[uwsgi]\nchdir = %d\nmodule = envapp:create_app()\nprocesses = 1\nhttp-socket = %ds\nlogto = %dapp.log\nlog-reopen = true\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           ready: false)
        defer { s.stop() }
        func text(_ name: String) -> String { (try? String(contentsOfFile: dir.file(name), encoding: .utf8)) ?? "" }
        #expect(waitUntil(15) { text("app.log").contains("workers accepting") }, "\(text("app.log"))\n\(s.log)")
        #expect(rename(dir.file("app.log"), dir.file("app.log.1")) == 0)
        s.signal(SIGHUP)
        #expect(waitUntil(15) { text("app.log").contains("reloading 1 workers") }, "the master logs to a new file: \(text("app.log"))")
        // The replacement worker (forked after the reopen) writes its request lines there too.
        #expect(waitUntil(15) { (try? unixGet(dir.file("s")).get().status) == 200 && text("app.log").contains("GET / 200") },
                "\(text("app.log"))")
    }
}
