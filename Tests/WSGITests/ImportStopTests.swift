import Foundation
import Glibc
import Testing
import TestSupport

/// A stop asked for while the master imports the app is obeyed at once (found by an attack): the import ran with
/// the master's signals blocked, so TERM, INT and QUIT waited for its end, and an import that hangs kept swsgi
/// running until SIGKILL (`timeout 5 swsgi ...` never returned). The temporary socket name goes with it.
extension WSGIIntegration {
    @Suite struct ImportStop {
        @Test(arguments: [SIGTERM, SIGINT, SIGQUIT]) func aStopDuringAHangingImportEndsSwsgi(signal: Int32) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", "import time\nopen(__file__ + '.started', 'w').close()\ntime.sleep(60)\ndef application(e, s):\n    return []\n")
            var env = PythonUnderTest.debian.environment
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            let s = try Server(["--processes", "1", "--wsgi-file", dir.file("app.py")], dir: dir, socket: "s", environment: env, ready: false)
            defer { s.stop() }
            #expect(waitUntil(15) { access(dir.file("app.py.started"), F_OK) == 0 }, "\(s.log)")
            kill(s.pid, signal)
            let status = s.waitExit(timeout: 5)
            #expect(status == 0, "exit \(status.map(String.init) ?? "none"):\n\(s.log)")
            let name = [SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT"][signal]!
            #expect(s.log.contains("\(name) during the app's import: stopped before serving"), "\(s.log)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.filter { $0.hasPrefix(".s") || $0 == "s" } ?? []
            #expect(left.isEmpty, "socket names left: \(left)")
        }
    }
}
