import Foundation
import Glibc
import Testing
import TestSupport

/// A worker that exits in order runs the app's exit handlers, as uWSGI and gunicorn do (found by an attack: none
/// ran, so whatever flushes at exit, logging.shutdown, a tracing exporter's batch, was lost at every reload and stop).
extension WSGIIntegration {
    @Suite struct WorkerExitHandlers {
        static let app = #"""
import atexit, os, uwsgi
MARKS = os.environ['EXIT_MARKS']

def mark(kind):
    open(os.path.join(MARKS, '%s-%d' % (kind, os.getpid())), 'w').close()

atexit.register(mark, 'atexit')
uwsgi.atexit = lambda: mark('uwsgi')

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
"""#

        @Test(arguments: [[], ["--lazy-apps"], ["--threads", "2"]]) func exitHandlersRunInEachWorkerAtAGracefulStop(extra: [String]) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", Self.app)
            try FileManager.default.createDirectory(atPath: dir.file("marks"), withIntermediateDirectories: true)
            var env = PythonUnderTest.debian.environment
            env["EXIT_MARKS"] = dir.file("marks")
            let s = try Server(["--processes", "2", "--wsgi-file", dir.file("app.py")] + extra, dir: dir, environment: env)
            defer { s.stop() }
            let workers = s.waitWorkers(2)
            #expect(workers.count == 2)
            #expect(try s.get("/").status == 200)
            kill(s.pid, SIGTERM)
            #expect(s.waitExit(timeout: 15) == 0, "\(s.log)")
            let marks = Set((try? FileManager.default.contentsOfDirectory(atPath: dir.file("marks"))) ?? [])
            for pid in workers {
                #expect(marks.contains("atexit-\(pid)") && marks.contains("uwsgi-\(pid)"), "worker \(pid): \(marks.sorted())\n\(s.log)")
            }
        }
    }
}
