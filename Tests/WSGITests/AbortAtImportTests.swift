// An app that aborts (SIGABRT) while the master imports it: one line saying so and a non-zero exit,
// not a Swift crash report that reads as if swsgi itself had crashed. (SIGKILL cannot be caught: the
// master ends with 137 and no line; nothing a process can do about that.)
import Foundation
import Glibc
import Testing

extension WSGIIntegration.ProcessSide {
    @Test func anAppAbortingAtImportGetsOneLineNotACrashReport() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "import os\nos.abort()\ndef application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
        let r = try runToExit(["--processes", "2", "--wsgi-file", dir.file("app.py")],
                              environment: PythonUnderTest.debian.environment, socket: "s", in: dir, timeout: 15)
        #expect(r.status != 0, "exit status \(r.status); log:\n\(r.output)")
        #expect(r.output.contains("the app aborted (SIGABRT) while being imported"), "log:\n\(r.output)")
        #expect(!r.output.contains("Program crashed") && !r.output.contains("Backtrace"), "no crash report:\n\(r.output)")
        #expect(r.output.split(separator: "\n").count <= 3, "a line, not a report:\n\(r.output)")
        #expect(!fileExists(dir.file("s")), "nothing left listening")
        let temporary = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".s") }
        #expect(temporary.isEmpty, "no temporary socket left behind: \(temporary)")
    }
}
