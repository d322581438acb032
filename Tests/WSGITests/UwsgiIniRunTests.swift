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
