import Foundation
import Glibc
import Testing

/// A Flask app: `/sleep` waits 200 ms (a database or API call), `/ticks` counts the rounds of a thread it
/// started on its first request (10 ms each), `/env` shows the DJANGO_* variables it sees.
private let app = """
    import os, threading, time
    from flask import Flask
    app = Flask(__name__)
    ticks = [0]
    started = []

    def tick():
        while True:
            ticks[0] += 1
            time.sleep(0.01)

    @app.route('/sleep')
    def sleep():
        time.sleep(0.2)
        return 'slept %d' % os.getpid()

    @app.route('/ticks')
    def count():
        if not started:
            started.append(threading.Thread(target=tick, daemon=True))
            started[0].start()
        return str(ticks[0])

    @app.route('/env')
    def env():
        return repr(sorted((k, v) for k, v in os.environ.items() if k.startswith('DJANGO')))
    """

/// `gevent = N`, `enable-threads = false` and `env = NAME = VALUE` on a running swsgi with a Flask app.
// Under WSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension WSGIIntegration {
@Suite struct UwsgiConcurrencyKeys {
    private func start(_ ini: String, in dir: TempDir) throws -> Server {
        try PythonUnderTest.debian.require("flask")
        try dir.write("app.py", app)
        try dir.write("app.ini", "[uwsgi]\nchdir = %d\nhttp-socket = %ds\nmodule = app:app\nprocesses = 1\n" + ini)
        return try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment)
    }

    /// gevent = 8 (real configs: gevent = 100 on a plain Flask app): one worker serves 8 requests that each
    /// wait 200 ms at once, in well under the 1.6 s they take one after the other; the warning says how.
    @Test func geventServesNRequestsAtOncePerWorker() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("gevent = 8\n", in: dir)
        defer { s.stop() }
        #expect(s.log.components(separatedBy: "gevent = 8: served by 8 request threads per worker; swsgi has no gevent loop").count - 1 == 1, "\(s.log)")
        // Warm: Flask's first request compiles its URL map.
        #expect(try getOnce(.unix(dir.file("s")), path: "/sleep").get().status == 200)
        let started = monotonicSeconds()
        let replies = WSGIIntegration.Threads.concurrently(dir.file("s"), Array(repeating: "/sleep", count: 8), timeout: 10)
        let elapsed = monotonicSeconds() - started
        print("gevent = 8: 8 concurrent requests of 200 ms to one worker answered in \(Int(elapsed * 1000)) ms")
        var pids = Set<String>()
        for r in replies {
            let reply = try r.get()
            #expect(reply.status == 200, "\(reply.text)")
            pids.insert(reply.text)
        }
        #expect(pids.count == 1, "one worker served them all: \(pids)")
        #expect(elapsed < 0.8, "8 requests of 200 ms took \(elapsed) s (one after the other: 1.6 s)")
    }

    /// enable-threads = false: accepted with its warning, and a thread the app started keeps running while
    /// the worker is idle (uWSGI's false would hold it until the next request); `env = NAME = VALUE` sets
    /// NAME=VALUE, not uWSGI's 'NAME ' (trailing space).
    @Test func enableThreadsFalseAndEnvWithSpaces() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("enable-threads = false\nenv = DJANGO_SETTINGS_MODULE = ins.settings\n", in: dir)
        defer { s.stop() }
        #expect(s.log.contains("enable-threads = false: threads the app starts still run between requests"), "\(s.log)")
        #expect(s.log.contains("env = 'DJANGO_SETTINGS_MODULE = ins.settings': sets DJANGO_SETTINGS_MODULE='ins.settings'"), "\(s.log)")
        #expect(try getOnce(.unix(dir.file("s")), path: "/env").get().body == "[('DJANGO_SETTINGS_MODULE', 'ins.settings')]")
        let first = Int(try getOnce(.unix(dir.file("s")), path: "/ticks").get().body) ?? -1
        // The worker idle for 300 ms: no request gives the thread the GIL meanwhile.
        usleep(300_000)
        let second = Int(try getOnce(.unix(dir.file("s")), path: "/ticks").get().body) ?? -1
        print("enable-threads = false: the app's thread ran \(second - first) rounds of 10 ms while the worker idled 300 ms")
        #expect(first >= 0 && second - first >= 10, "the app's thread ran \(second - first) rounds of 10 ms in 300 ms idle")
    }
}
}

