import Foundation
import Glibc
import Testing

/// `reload-on-exception` (uWSGI's): a request whose app raises gets its 500, then the worker is
/// recycled gracefully; a request that succeeds leaves the worker alone.
// Under WSGIIntegration: it starts processes, so it runs one suite at a time with the others that do.
extension WSGIIntegration {
@Suite struct UwsgiReloadOnException {
    @Test func aRaisingRequestRecyclesItsWorker() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", """
            import os
            def application(environ, start_response):
                if environ['PATH_INFO'] == '/boom':
                    raise ValueError('boom')
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [str(os.getpid()).encode()]
            """)
        try dir.write("app.ini", "[uwsgi]\nchdir = %d\nwsgi-file = app.py\nprocesses = 1\nhttp-socket = %ds\nreload-on-exception = true\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           ready: false)
        defer { s.stop() }
        #expect(s.waitForLog("workers accepting", timeout: 15), "\(s.log)")
        let first = try unixGet(dir.file("s")).get()
        let again = try unixGet(dir.file("s")).get()
        #expect(first.status == 200 && again.body == first.body, "a good request keeps the worker: \(first.body) \(again.body)")
        #expect(try getOnce(.unix(dir.file("s")), path: "/boom").get().status == 500)
        #expect(s.waitForLog(": reload-on-exception"), "\(s.log)")
        var after = ""
        #expect(waitUntil(10) { after = (try? unixGet(dir.file("s")).get().body) ?? ""; return !after.isEmpty && after != first.body },
                "a new worker answers: \(first.body) -> \(after)")
    }
}
}
