import Foundation
import Glibc
import Testing
import TestSupport

/// --lazy-apps reloads replace workers first (found by an attack): an old worker serves until its replacement has
/// imported the app, and a release that cannot be imported (broken code, a database down at import) keeps the old
/// workers serving and is retried, where it stopped the whole server and cut the requests in flight.
extension WSGIIntegration {
    @Suite struct LazyReload {
        static func write(_ dir: TempDir, _ version: String, importSeconds: Double = 0, broken: Bool = false) throws {
            let body = broken ? "raise RuntimeError('broken release')\n" : """
            import time
            time.sleep(\(importSeconds))
            def application(environ, start_response):
                if environ['PATH_INFO'] == '/slow':
                    time.sleep(1.5)
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [b'\(version)']
            """
            // Written whole and renamed in: a worker never imports half a file.
            try dir.write("app.py.new", body)
            #expect(rename(dir.file("app.py.new"), dir.file("app.py")) == 0)
        }

        @Test func aBrokenReleaseKeepsTheOldWorkersServingAndIsRetried() throws {
            let args = ["--lazy-apps", "--processes", "2", "--wsgi-file", "{dir}/app.py"]
            try withPython(args, setUp: { dir in try Self.write(dir, "v1"); return [:] }) { s, dir throws in
                // A request in flight across the reload is answered.
                let inFlight = try s.connect()
                try inFlight.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                try Self.write(dir, "v2", broken: true)
                kill(s.pid, SIGHUP)
                #expect(s.waitForLog("could not load the app", timeout: 10), "\(s.log)")
                #expect(String(decoding: try inFlight.readResponse(timeout: 10).body, as: UTF8.self) == "v1")
                for _ in 0..<10 {
                    let r = try s.get("/")
                    #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "v1")
                }
                #expect(s.isRunning && !s.log.contains("immediate shutdown"), "\(s.log)")
                // The fixed release is picked up by a retry; its workers then replace the old ones.
                try Self.write(dir, "v3")
                #expect(waitUntil(20) { (try? s.get("/")).map { String(decoding: $0.body, as: UTF8.self) } == "v3" }, "\(s.log)")
                #expect(s.waitForLog("retiring worker", timeout: 10), "\(s.log)")
            }
        }

        @Test func oldWorkersServeWhileTheReplacementsImport() throws {
            let args = ["--lazy-apps", "--processes", "2", "--wsgi-file", "{dir}/app.py"]
            try withPython(args, setUp: { dir in try Self.write(dir, "v1"); return [:] }) { s, dir throws in
                try Self.write(dir, "v2", importSeconds: 2)
                kill(s.pid, SIGHUP)
                #expect(s.waitForLog("replacing worker", timeout: 5), "\(s.log)")
                // During the two seconds of import, answers come at once, from the old code.
                for _ in 0..<5 {
                    let started = monotonicSeconds()
                    let r = try s.get("/")
                    #expect(String(decoding: r.body, as: UTF8.self) == "v1" && monotonicSeconds() - started < 1,
                            "\(String(decoding: r.body, as: UTF8.self)) after \(monotonicSeconds() - started) s")
                }
                #expect(waitUntil(20) { (try? s.get("/")).map { String(decoding: $0.body, as: UTF8.self) } == "v2" }, "\(s.log)")
            }
        }
    }
}
