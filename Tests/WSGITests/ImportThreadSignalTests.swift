import Foundation
import Glibc
import Testing

/// An app whose import starts a thread (a metrics exporter, an error reporter's flusher, a scheduler):
/// that thread lives in the master, so a signal sent to the master must not reach it with its default
/// action (HUP, TERM and USR1 would kill the master, and the workers' requests with it).
extension WSGIIntegration {
    @Suite struct ImportThreadSignals {
        static let app = #"""
        import threading, time

        def tick():
            while True:
                time.sleep(0.005)

        threading.Thread(target=tick, daemon=True).start()

        def application(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'ok\n']
        """#

        static func setUp(_ dir: TempDir) throws -> [String: String] {
            try dir.write("threaded_import.py", app)
            return [:]
        }

        @Test(arguments: [1, 4]) func masterWithAnImportThreadReloadsAtHupAndStopsGracefullyAtTerm(threads: Int) throws {
            try withPython(["--processes", "2", "--threads", "\(threads)", "--wsgi-file", "{dir}/threaded_import.py"],
                           setUp: Self.setUp) { s, _ throws in
                let before = s.waitWorkers(2)
                #expect(before.count == 2)
                for _ in 0..<3 {
                    s.signal(SIGHUP)
                    #expect(s.waitForLog("retiring worker 2"), "HUP reloads; log:\n\(s.log)")
                }
                let after = s.waitWorkers(2) { Set($0).isDisjoint(with: before) }
                #expect(Set(after).isDisjoint(with: before), "new workers after HUP: \(before) -> \(after); log:\n\(s.log)")
                #expect(try s.get("/x").status == 200)
                s.signal(SIGTERM)
                #expect(s.waitExit(timeout: 10) == 0, "TERM: graceful stop, exit 0; log:\n\(s.log)")
            }
        }
    }
}
