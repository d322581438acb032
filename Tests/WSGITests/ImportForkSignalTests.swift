import Foundation
import Glibc
import Testing
import TestSupport

/// A process the app forks while the master imports it (multiprocessing at import, the default without --lazy-apps)
/// starts with no signal blocked and takes TERM's default action (found by an attack: the master's blocked signals
/// and its start-up TERM recorder were inherited, so TERM did nothing and a stopped swsgi left it as an orphan).
extension WSGIIntegration {
    @Suite struct ImportForkSignals {
        @Test func aChildForkedDuringTheImportStopsOnTERM() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", #"""
import multiprocessing, os, signal, time
def child(path):
    with open(path + '.new', 'w') as f:
        f.write(str(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))))
    os.rename(path + '.new', path)
    time.sleep(60)
p = multiprocessing.get_context('fork').Process(target=child, args=(os.environ['MASK_FILE'],))
p.start()
with open(os.environ['PID_FILE'], 'w') as f:
    f.write(str(p.pid))
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'ok']
"""#)
            var env = PythonUnderTest.debian.environment
            env["MASK_FILE"] = dir.file("mask")
            env["PID_FILE"] = dir.file("child.pid")
            let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py")], dir: dir, environment: env)
            defer { s.stop() }
            #expect(waitUntil(10) { (try? String(contentsOfFile: dir.file("mask"), encoding: .utf8)) != nil })
            #expect((try? String(contentsOfFile: dir.file("mask"), encoding: .utf8)) == "[]")
            let child = try #require(Int32((try? String(contentsOfFile: dir.file("child.pid"), encoding: .utf8)) ?? ""))
            // The child is the master's; the test started the master, and stops the child it made through the app.
            kill(child, SIGTERM)
            #expect(waitUntil(5) {
                let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
                return state == nil || state == "Z"
            }, "the import's child is still running after TERM")
        }
    }
}
