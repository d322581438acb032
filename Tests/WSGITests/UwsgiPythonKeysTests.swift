import Foundation
import Glibc
import Testing

/// A Flask app that shows where it is mounted: its name, SCRIPT_NAME, PATH_INFO and url_for (which
/// builds links from SCRIPT_NAME, so a mounted app links under its own prefix).
private func flaskApp(_ name: String) -> String {
    """
    from flask import Flask, request, url_for
    app = Flask(__name__)

    @app.route('/', defaults={'rest': ''})
    @app.route('/<path:rest>')
    def show(rest):
        return '%s|%s|%s|%s' % ('\(name)', request.environ['SCRIPT_NAME'], request.environ['PATH_INFO'], url_for('show', rest='x'))
    """
}

/// The `[uwsgi]` keys of the Python plugin (mount, py-autoreload, pyargv, import, optimize...) on a running swsgi.
// Under WSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension WSGIIntegration {
@Suite struct UwsgiPythonKeys {
    private func start(_ ini: String, in dir: TempDir, ready: Bool = true) throws -> Server {
        try dir.write("app.ini", "[uwsgi]\nchdir = %d\nhttp-socket = %ds\n" + ini)
        var env = PythonUnderTest.debian.environment
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: env, ready: ready)
    }

    private func get(_ dir: TempDir, _ path: String) throws -> (status: Int, body: String) {
        let r = try getOnce(.unix(dir.file("s")), path: path).get()
        return (r.status, r.body)
    }

    /// Two Flask apps mounted with manage-script-name: the longest prefix picks the app, the prefix moves
    /// from PATH_INFO to SCRIPT_NAME (so url_for links under it), `/apix` is not under `/api`, and a path
    /// under no mount goes to the app at / (here the `module` one).
    @Test func twoFlaskAppsMountedWithManageScriptName() throws {
        try PythonUnderTest.debian.require("flask")
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("api.py", flaskApp("api"))
        try dir.write("admin.py", flaskApp("admin"))
        try dir.write("root.py", flaskApp("root"))
        let s = try start("""
            module = root:app
            mount = /api=api.py
            mount = /api/admin/=admin:app
            callable = app
            manage-script-name = true
            processes = 1
            """, in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/api/users/7") == (200, "api|/api|/users/7|/api/x"))
        #expect(try get(dir, "/api/") == (200, "api|/api|/|/api/x"))
        #expect(try get(dir, "/api/admin/panel") == (200, "admin|/api/admin|/panel|/api/admin/x"), "the longest mount point wins")
        #expect(try get(dir, "/apix") == (200, "root||/apix|/x"), "a mount point matches whole path segments only")
        #expect(try get(dir, "/other") == (200, "root||/other|/x"))
    }

    /// Without manage-script-name the request's SCRIPT_NAME picks the app (over HTTP it is empty): with no
    /// app at /, uWSGI answers 500 and logs that no app was found; the start-up log warns of it.
    @Test func withoutManageScriptNameAndNoRootAppRequestsGet500() throws {
        try PythonUnderTest.debian.require("flask")
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("api.py", flaskApp("api"))
        let s = try start("mount = /api=api.py\ncallable = app\nprocesses = 1\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/api/x").status == 500)
        #expect(s.waitForLog("no python application found"), "\(s.log)")
        #expect(s.log.contains("no app is mounted at /"), "\(s.log)")
    }

    /// A mount point that is no URL path, or an app that is neither a file nor MODULE:CALLABLE, is refused.
    @Test func badMountsAreRefusedWithTheReason() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        for (value, reason) in [("/api=api", "MODULE:CALLABLE"), ("api=api.py", "starting with /"), ("/api", "MOUNTPOINT=APP"),
                                ("/x=config:/etc/app.ini", "paste.deploy")] {
            try dir.write("bad.ini", "[uwsgi]\nhttp-socket = :0\nmount = \(value)\n")
            let r = try runCommand(try swsgiBinary(), ["--ini", dir.file("bad.ini"), "--check"])
            #expect(r.status == 2 && r.output.contains(reason), "\(value): \(r.status) \(r.output)")
        }
    }

    /// An app whose answer comes from a module it imports at start (`helper`) or on first use (`lazymod`).
    private func writeReloadApp(_ dir: TempDir) throws {
        try dir.write("app.py", """
            import helper

            def application(environ, start_response):
                if environ['PATH_INFO'] == '/lazy':
                    import lazymod
                    body = lazymod.VALUE
                else:
                    body = helper.VALUE
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [body.encode()]
            """)
        try dir.write("helper.py", "VALUE = 'one'\n")
        try dir.write("lazymod.py", "VALUE = 'lazy one'\n")
    }

    /// Saves a file as editors do: a new file renamed over the old one.
    private func save(_ dir: TempDir, _ name: String, _ text: String) throws {
        try dir.write(name + ".tmp", text)
        #expect(rename(dir.file(name + ".tmp"), dir.file(name)) == 0)
    }

    /// py-autoreload: editing a module the running app imported reloads the workers, the new code answers,
    /// and not one request of a steady load fails meanwhile. Idle, with the watch in place, no process wakes.
    @Test func pyAutoreloadServesTheEditedModuleWithZeroFailedRequests() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        let s = try start("wsgi-file = app.py\npy-autoreload = 1\nprocesses = 2\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/") == (200, "one"))
        // Idle: inotify, no polling thread or timer, so neither the master nor a worker is woken.
        let processes = [s.pid] + children(of: s.pid)
        func switches() -> [Int] { processes.map { Int(statusField($0, "voluntary_ctxt_switches") ?? "") ?? -1 } }
        // The request's own deadlines (a connection's idle mark 0.5 s after it, a closed one's last scan) may wake a
        // worker once; after them, a whole second without a wake-up must come (a timer or a polling thread never
        // gives one), within 6 s.
        var windows: [([Int], [Int])] = []
        var quiet = false
        let deadline = monotonicSeconds() + 6
        while !quiet && monotonicSeconds() < deadline {
            let before = switches()
            try await Task.sleep(nanoseconds: 1_000_000_000)
            windows.append((before, switches()))
            quiet = windows.last!.0 == windows.last!.1
        }
        #expect(quiet, "an idle swsgi with py-autoreload kept waking up: \(windows)")

        let load = LoadGenerator(socket: dir.file("s"))
        try await Task.sleep(nanoseconds: 200_000_000)
        try save(dir, "helper.py", "VALUE = 'two'\n")
        #expect(s.waitForLog("py-autoreload: \(dir.file("helper.py")) changed"), "\(s.log)")
        #expect(waitUntil(15) { (try? get(dir, "/").body) == "two" }, "the edited module answers: \(s.log)")
        try await Task.sleep(nanoseconds: 200_000_000)
        let tally = try await load.stop()
        #expect(tally.ok > 0 && tally.failures.isEmpty, "\(tally.ok) ok, failures: \(tally.failures.prefix(5))")
        #expect(s.log.components(separatedBy: "reloading 2 workers").count - 1 == 1, "one change, one reload: \(s.log)")
    }

    /// A module the app imports only while serving a request is watched from that request on.
    @Test func pyAutoreloadWatchesModulesImportedDuringRequests() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        let s = try start("wsgi-file = app.py\npy-autoreload = 2\nprocesses = 1\nthreads = 2\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/lazy") == (200, "lazy one"))
        try save(dir, "lazymod.py", "VALUE = 'lazy two'\n")
        #expect(s.waitForLog("py-autoreload: \(dir.file("lazymod.py")) changed"), "\(s.log)")
        #expect(waitUntil(15) { (try? get(dir, "/lazy").body) == "lazy two" }, "\(s.log)")
    }

    /// An edit saved half-way (a syntax error) does not reload: the workers keep the code they loaded and
    /// answer on; the next save that compiles reloads.
    @Test func pyAutoreloadWaitsForASaveThatCompiles() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        let s = try start("wsgi-file = app.py\npy-autoreload = 1\nprocesses = 1\n", in: dir)
        defer { s.stop() }
        try save(dir, "helper.py", "VALUE = (\n")
        #expect(s.waitForLog("helper.py changed but cannot be loaded (SyntaxError"), "\(s.log)")
        #expect(try get(dir, "/") == (200, "one"))
        #expect(!s.log.contains("reloading"), "\(s.log)")
        try save(dir, "helper.py", "VALUE = 'fixed'\n")
        #expect(waitUntil(15) { (try? get(dir, "/").body) == "fixed" }, "\(s.log)")
    }

    /// py-autoreload-ignore: a module left out is not watched; an edit of it reloads nothing.
    @Test func pyAutoreloadIgnoreLeavesTheModuleOut() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        let s = try start("wsgi-file = app.py\npy-auto-reload = 1\npy-auto-reload-ignore = helper\nprocesses = 1\n", in: dir)
        defer { s.stop() }
        try save(dir, "helper.py", "VALUE = 'two'\n")
        try await Task.sleep(nanoseconds: 700_000_000)
        #expect(try get(dir, "/") == (200, "one"))
        #expect(!s.log.contains("py-autoreload:"), "\(s.log)")
    }

    /// touch-chain-reload: the workers are replaced one at a time (each importing the app anew, with
    /// lazy-apps), the next once the previous replacement accepts; a steady load sees no failure.
    @Test func touchChainReloadReplacesWorkersOneAtATime() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        try dir.write("chain", "")
        let s = try start("wsgi-file = app.py\nlazy-apps = true\nprocesses = 3\ntouch-chain-reload = %dchain\n", in: dir)
        defer { s.stop() }
        let before = Set(children(of: s.pid))
        let load = LoadGenerator(socket: dir.file("s"))
        try await Task.sleep(nanoseconds: 200_000_000)
        try dir.write("helper.py", "VALUE = 'two'\n")
        #expect(utime(dir.file("chain"), nil) == 0)
        #expect(s.waitForLog("chain reload complete", timeout: 20), "\(s.log)")
        let tally = try await load.stop()
        #expect(tally.ok > 0 && tally.failures.isEmpty, "\(tally.ok) ok, failures: \(tally.failures.prefix(5))")
        #expect(try get(dir, "/") == (200, "two"))
        #expect(waitUntil(10) { Set(children(of: s.pid)).isDisjoint(with: before) && children(of: s.pid).count == 3 })
        let steps = s.logLines.filter { $0.contains("chain reload: next is worker") }
        #expect(steps.count == 3 && steps[0].contains("worker 1") && steps[2].contains("worker 3"), "\(steps)")
    }

    /// fs-reload and touch-workers-reload are touch-reload (the workers replaced when the path changes); with
    /// the app imported once in the master, the start-up log says that new code needs lazy-apps.
    @Test func fsReloadIsTouchReloadOneReloadPerSaveAndTheLogSaysWhatAReloadLoads() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try writeReloadApp(dir)
        try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
        try dir.write("w", "")
        let s = try start("wsgi-file = app.py\nprocesses = 1\nfs-reload = %dconf\ntouch-workers-reload = %dw\n", in: dir)
        defer { s.stop() }
        #expect(s.log.contains("For changed code set lazy-apps = true"), "\(s.log)")
        let before = children(of: s.pid)
        #expect(utime(dir.file("w"), nil) == 0)
        #expect(s.waitForLog("touch-reload: \(dir.file("w")) changed"), "\(s.log)")
        #expect(waitUntil(10) { let now = children(of: s.pid); return now.count == 1 && now != before })
        // A new file in the fs-reload directory (Foundation writes it atomically: a temporary file created,
        // written, closed, then renamed, four inotify events) is one reload.
        try dir.write("conf/new.txt", "x")
        #expect(s.waitForLog("touch-reload: \(dir.file("conf")) changed"), "\(s.log)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(s.log.components(separatedBy: "reloading 1 workers").count - 1 == 2, "one reload per save: \(s.log)")
    }

    /// optimize = 1 runs the app as `python -O` (asserts gone); pyargv is sys.argv after its first item,
    /// split at spaces and tabs as uWSGI splits it; py-executable is sys.executable.
    @Test func optimizeAndPyargvReachTheApp() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", """
            import sys
            def application(environ, start_response):
                try:
                    assert False
                    asserts = 'off'
                except AssertionError:
                    asserts = 'on'
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [('%s|%d|%s|%s' % (sys.argv[1:], sys.flags.optimize, asserts, sys.executable)).encode()]
            """)
        let s = try start("wsgi-file = app.py\nprocesses = 1\noptimize = 1\npyargv = -j  data.json\t--x\npy-executable = /opt/x/python\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/") == (200, "['-j', 'data.json', '--x']|1|off|/opt/x/python"))
    }

    /// import runs where the app is loaded (with lazy-apps: in each worker), shared-import once in the master
    /// before the fork; a file path is imported under uWSGI's name for it. A failing import stops swsgi.
    @Test func importAndSharedImportRunWhereUwsgiRunsThem() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", """
            import os, builtins
            def application(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [('%s|%s' % (builtins.IMPORTED_IN == os.getpid(), builtins.SHARED_IN == os.getppid())).encode()]
            """)
        try dir.write("early.py", "import builtins, os\nbuiltins.IMPORTED_IN = os.getpid()\n")
        try FileManager.default.createDirectory(atPath: dir.file("lib"), withIntermediateDirectories: true)
        try dir.write("lib/shared.py", "import builtins, os, sys\nbuiltins.SHARED_IN = os.getpid()\nassert 'lib.shared' in sys.modules\n")
        let s = try start("wsgi-file = app.py\nprocesses = 1\nlazy-apps = true\nimport = early\nshared-import = lib/shared.py\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/") == (200, "True|True"), "import in the worker, shared-import in the master: \(s.log)")

        let bad = try TempDir()
        defer { bad.remove() }
        try bad.write("app.py", "def application(e, s): pass\n")
        let failed = try start("wsgi-file = app.py\nprocesses = 1\npy-import = no_such_module_here\n", in: bad, ready: false)
        defer { failed.stop() }
        #expect(waitUntil(10) { !failed.isRunning }, "\(failed.log)")
        #expect(failed.exitStatus != 0 && failed.log.contains("--import no_such_module_here: the import failed"), "\(failed.log)")
    }

    /// paste = config:FILE serves the app paste.deploy builds; paste-name picks its section and
    /// paste-logger configures logging from the same file first.
    @Test func pasteLoadsTheAppWithItsLoggingConfig() throws {
        try PythonUnderTest.debian.require("paste.deploy")
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("pasted.py", """
            import logging
            def factory(global_config, greeting='hello'):
                def app(environ, start_response):
                    logging.getLogger("pasted").warning('served %s', environ['PATH_INFO'])
                    start_response('200 OK', [('Content-Type', 'text/plain')])
                    return [greeting.encode()]
                return app
            """)
        try dir.write("site.ini", """
            [app:main]
            use = call:pasted:factory
            greeting = from main

            [app:other]
            use = call:pasted:factory
            greeting = from other

            [loggers]
            keys = root

            [handlers]
            keys = file

            [formatters]
            keys = plain

            [logger_root]
            level = INFO
            handlers = file

            [handler_file]
            class = FileHandler
            args = ('\(dir.file("paste.log"))',)
            formatter = plain

            [formatter_plain]
            format = %(name)s: %(message)s
            """)
        let s = try start("paste = config:%dsite.ini\npaste-name = other\npaste-logger = true\npythonpath = %d\nprocesses = 1\n", in: dir)
        defer { s.stop() }
        #expect(try get(dir, "/x") == (200, "from other"))
        #expect(waitUntil(5) { ((try? String(contentsOfFile: dir.file("paste.log"), encoding: .utf8)) ?? "").contains("pasted: served /x") })
    }
}
}
