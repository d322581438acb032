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
        try await Task.sleep(nanoseconds: 300_000_000)
        let before = switches()
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(switches() == before, "an idle swsgi with py-autoreload woke up: \(before) -> \(switches())")

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
}
