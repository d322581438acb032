import Foundation
import Glibc
import Testing

/// Value forms of real `[uwsgi]` files that uWSGI gets past (issue 20): a path as `module`, a callable
/// with trailing text, `@(exec://COMMAND)`, a listener port that is not a number. Each on a running swsgi.
// Under WSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension WSGIIntegration {
@Suite struct UwsgiValueForms {
    static let hello = """
        import os
        def application(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [os.environ.get('SHOWN', 'no SHOWN').encode() + b'|' + __file__.encode()]
        """

    /// `module = /abs/path/app.wsgi` and `module = sub/app.py:name`: uWSGI's `module` would fail to import
    /// a path; swsgi loads the file as wsgi-file (mod_wsgi's `.wsgi` suffix too), with a warning saying so.
    @Test(arguments: [("deploy/site.wsgi", "", "application"), ("sub/app.py", ":served", "served")])
    func aPathAsModuleIsLoadedAsTheFile(_ file: String, _ suffix: String, _ name: String) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file(String(file.split(separator: "/")[0])), withIntermediateDirectories: true)
        try dir.write(file, Self.hello.replacingOccurrences(of: "def application", with: "def \(name)"))
        try dir.write("app.ini", "[uwsgi]\nmodule = %d\(file)\(suffix)\nprocesses = 1\nhttp-socket = %ds\n")
        let env = PythonUnderTest.debian.environment
        let check = try runToExit(["--ini", dir.file("app.ini"), "--check"], environment: env, in: dir)
        #expect(check.status == 0 && check.output.contains("is a file path, not a module name"), "\(check.output)")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: env, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        let reply = try unixGet(dir.file("s")).get()
        #expect(reply.status == 200 && reply.body.hasSuffix("/" + file), "\(reply.body)\n\(s.log)")
        #expect(s.log.contains("swsgi loads it as wsgi-file = '") && s.log.contains("/\(file)'"), "\(s.log)")
    }

    /// `wsgi-file = a.py` with `module = b.py`: uWSGI fails to import the path and serves the wsgi-file (checked
    /// with Debian's uWSGI 2.0.21: "No module named 'b'", then a.py answers); so does swsgi, in either order.
    @Test(arguments: [true, false])
    func aPathAsModuleBesideAWsgiFileLeavesTheWsgiFileServed(_ moduleLast: Bool) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("a.py", Self.hello)
        try dir.write("b.py", Self.hello)
        let lines = ["wsgi-file = %da.py", "module = %db.py"]
        try dir.write("app.ini", "[uwsgi]\n" + (moduleLast ? lines : lines.reversed()).joined(separator: "\n") + "\nprocesses = 1\nhttp-socket = %ds\n")
        let env = PythonUnderTest.debian.environment
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: env, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        let reply = try unixGet(dir.file("s")).get()
        #expect(reply.status == 200 && reply.body.hasSuffix("/a.py"), "\(reply.body)\n\(s.log)")
    }

    /// `module = app:application //comment`: the config is valid (`--check` exits 0 with a warning naming
    /// the callable); the app fails to load, one clear line and the same status as a missing module.
    @Test func aCallableWithTrailingTextFailsAtAppLoad() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("hello.py", Self.hello)
        let env = PythonUnderTest.debian.environment
        try dir.write("bad.ini", "[uwsgi]\nchdir = %d\nmodule = hello:application //the wsgi module\nprocesses = 1\nhttp-socket = %ds\n")
        try dir.write("missing.ini", "[uwsgi]\nchdir = %d\nmodule = nosuchmodule:application\nprocesses = 1\nhttp-socket = %ds\n")
        let check = try runToExit(["--ini", dir.file("bad.ini"), "--check"], environment: env, in: dir)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("warning: --module 'hello:application //the wsgi module': the callable 'application //the wsgi module' is not a Python identifier"),
                "\(check.output)")
        let bad = try runToExit(["--ini", dir.file("bad.ini")], environment: env, in: dir, timeout: 20)
        let missing = try runToExit(["--ini", dir.file("missing.ini")], environment: env, in: dir, timeout: 20)
        #expect(bad.status != 0 && bad.status == missing.status, "bad \(bad.status), missing module \(missing.status)\n\(bad.output)")
        #expect(bad.output.contains("module 'hello' has no 'application //the wsgi module'"), "\(bad.output)")
        #expect(!fileExists(dir.file("s")), "nothing served")
        // The other module forms still load.
        try dir.write("factory.py", "from hello import application as _a\ndef create_app():\n    return _a\n")
        try dir.write("good.ini", "[uwsgi]\nchdir = %d\nmodule = factory:create_app()\nprocesses = 1\nhttp-socket = %ds\n")
        let s = try Server(["--ini", dir.file("good.ini")], dir: dir, socket: nil, environment: env, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        #expect((try? unixGet(dir.file("s")).get().status) == 200, "\(s.log)")
    }

    /// `@(exec://COMMAND)`: run with /bin/sh -c while the config is read, its stdout the value, one final
    /// newline dropped (uWSGI's uwsgi_at_file_read). A failing command stops start-up naming it and its
    /// status; `--check` only warns (the command may need the machine the config is for).
    @Test func execValuesRunTheCommand() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("hello.py", Self.hello)
        let env = PythonUnderTest.debian.environment
        // `%%` is uWSGI's magic for one `%`: the command sees `printf '%s-%s\n' ...`.
        try dir.write("app.ini", """
            [uwsgi]
            chdir = %d
            module = hello
            env = SHOWN=@(exec://printf '%%s-%%s\\n\\n' "$(echo one)" two)
            processes = 1
            http-socket = %ds
            """)
        do {
            let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: env, ready: false)
            defer { s.stop() }
            #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
            let reply = try unixGet(dir.file("s")).get()
            #expect(reply.body.hasPrefix("one-two\n|"), "one trailing newline dropped, the other kept: \(reply.body)")
        }

        try dir.write("fail.ini", "[uwsgi]\nchdir = %d\nmodule = hello\nenv = SHOWN=@(exec://echo partial; exit 3)\nprocesses = 1\nhttp-socket = %ds\n")
        let failed = try runToExit(["--ini", dir.file("fail.ini")], environment: env, in: dir)
        #expect(failed.status != 0 && failed.output.contains("@(exec://echo partial; exit 3): the command exited with status 3 (it printed 'partial\\n')"),
                "\(failed.status) \(failed.output)")
        #expect(!fileExists(dir.file("s")))
        let checked = try runToExit(["--ini", dir.file("fail.ini"), "--check"], environment: env, in: dir)
        #expect(checked.status == 0 && checked.output.contains("the command exited with status 3 here; the value is checked when swsgi starts"),
                "\(checked.output)")

        for (scheme, message) in [("http://example.com/port", "swsgi fetches no URLs"), ("file:///etc/hostname", "uWSGI has no file:// scheme"),
                                  ("sym://uwsgi_port", "reads a symbol linked into the uWSGI binary")] {
            try dir.write("scheme.ini", "[uwsgi]\nmodule = hello\nenv = SHOWN=@(\(scheme))\nhttp-socket = %ds\n")
            let r = try runToExit(["--ini", dir.file("scheme.ini"), "--check"], environment: env, in: dir)
            #expect(r.status != 0 && r.output.contains("@(\(scheme)): \(message)"), "\(scheme): \(r.output)")
        }
    }

    /// No deadline on a command (uWSGI has none), but a stop while it runs ends it, its process group
    /// (what it started too) and start-up, with one line.
    @Test func aStopWhileACommandRunsStopsTheCommand() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.ini", "[uwsgi]\nmodule = hello\nhttp-socket = %ds\nenv = X=@(exec://sleep 60 & sleep 61; echo never)\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment, ready: false)
        defer { s.stop() }
        var sleepers: [pid_t] = []
        try waitUntil(10, "the command's two sleeps run") {
            sleepers = allPids().filter { ["sleep 60", "sleep 61"].contains(commandLine(of: $0).joined(separator: " ")) && getpgid($0) != getpgid(0) }
                .filter { p in (children(of: s.pid) + children(of: s.pid).flatMap { children(of: $0) }).contains(p) }
            return sleepers.count == 2
        }
        s.signal(SIGTERM)
        let status = s.waitExit(timeout: 10)
        #expect(status != nil && status != 0, "\(s.log)")
        #expect(s.log.contains("@(exec://sleep 60 & sleep 61; echo never): the command did not finish: swsgi got SIGTERM while it ran"), "\(s.log)")
        #expect(try waitUntil(5) { sleepers.allSatisfy { !isAlive($0) } }, "both sleeps stopped")
    }

    /// `http = 127.0.0.1:$PORT` (uWSGI expands `$(PORT)`, not `$PORT`): uWSGI's atoi reads the port as 0,
    /// a free port the kernel picks. swsgi does the same, warns, and its log names the port, which serves.
    @Test func aPortThatIsNotANumberIsAFreePort() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("hello.py", Self.hello)
        try dir.write("app.ini", "[uwsgi]\nchdir = %d\nmodule = hello\nprocesses = 1\nhttp = 127.0.0.1:$PORT\nsocket = 127.0.0.1:<Port>\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment, ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        #expect(s.log.contains("http = '127.0.0.1:$PORT': the port '$PORT' is not a number: read as 0 ('127.0.0.1:0')"), "\(s.log)")
        #expect(s.log.contains("socket = '127.0.0.1:<Port>': the port '<Port>' is not a number"), "\(s.log)")
        let ports = s.log.matches(of: /(http|uwsgi):127\.0\.0\.1:(\d+) \(port 0: chosen by the kernel\)/).map { (String($0.1), UInt16($0.2) ?? 0) }
        #expect(ports.count == 2 && Set(ports.map(\.1)).count == 2 && !ports.contains { $0.1 == 0 }, "\(s.log)")
        if let http = ports.first(where: { $0.0 == "http" })?.1 {
            #expect((try? tcpGet(port: http).get()) == 200, "\(s.log)")
        }
    }
}
}
