import Foundation
import Glibc
import Testing

/// Which app a `[uwsgi]` file serves when it names two, or none, as uWSGI decides.
// Under WSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension WSGIIntegration {
@Suite struct UwsgiAppChoice {
    /// `wsgi-file` and `module` both given: uWSGI's python plugin loads `module` first and skips the
    /// file ("mountpoint already configured"). swsgi serves the module's app, never imports the file,
    /// and says so at start-up.
    @Test func moduleWinsOverWsgiFileAndTheFileIsNeverImported() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("modapp.py", """
            def application(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [b'module app']
            """)
        try dir.write("fileapp.py", """
            open(__file__ + '.imported', 'w').close()
            def application(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [b'file app']
            """)
        try dir.write("app.ini", """
            [uwsgi]
            chdir = %d
            wsgi-file = fileapp.py
            module = modapp
            processes = 1
            http-socket = %ds
            """)
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        let reply = try unixGet(dir.file("s")).get()
        #expect(reply.status == 200 && reply.body == "module app", "\(reply.body)\n\(s.log)")
        #expect(!fileExists(dir.file("fileapp.py.imported")), "the file is never imported")
        #expect(s.log.contains("wsgi-file = 'fileapp.py': not loaded"), "\(s.log)")
    }

    /// `lazy-apps` in a file that names no app (uWSGI's users give it on the command line): `--check`
    /// passes and says so; started alone, swsgi refuses (uWSGI would answer every request 500); with
    /// `--module` on the command line it serves, importing the app in each worker.
    @Test func lazyAppsWithTheAppOnTheCommandLine() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("pidapp.py", """
            import os
            def application(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [str(os.getpid()).encode()]
            """)
        try dir.write("app.ini", "[uwsgi]\nlazy-apps = true\nprocesses = 1\nhttp-socket = %ds\n")
        let env = PythonUnderTest.debian.environment
        let check = try runToExit(["--ini", dir.file("app.ini"), "--check"], environment: env, in: dir)
        #expect(check.status == 0 && check.output.contains("; no app (module, wsgi-file) given"), "\(check.output)")
        let alone = try runToExit(["--ini", dir.file("app.ini")], environment: env, in: dir)
        #expect(alone.status != 0 && alone.output.contains("--lazy-apps needs a Python app"), "\(alone.output)")
        let s = try Server(["--ini", dir.file("app.ini"), "--chdir", dir.path, "--module", "pidapp"], dir: dir, socket: nil,
                           environment: env, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        let reply = try unixGet(dir.file("s")).get()
        #expect(reply.status == 200 && s.workers.map(String.init).contains(reply.body), "a worker imported and answered: \(reply.body) \(s.workers)")
    }
}
}
