// limit-as so low that Python cannot start: whichever step runs out of address space first (running
// the interpreter to find libpython, mapping it, Py_InitializeEx exiting from inside), swsgi exits
// non-zero at once with a line of its own that names --limit-as, the cause the operator can change.
import Foundation
import Glibc
import Testing

extension WSGIIntegration.ProcessSide {
    @Test func limitAsTooLowForPythonSaysSo() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
        var failed = 0
        for mib in ["16", "24", "28", "32"] {
            let r = try runToExit(["--processes", "1", "--wsgi-file", dir.file("app.py"), "--limit-as", mib],
                                  environment: PythonUnderTest.debian.environment, socket: "s", in: dir, timeout: 15)
            if r.status == 0 { continue }
            failed += 1
            #expect(r.output.split(separator: "\n").contains { $0.hasPrefix("swsgi") && $0.contains("--limit-as \(mib)") },
                    "limit-as \(mib): status \(r.status), no line naming --limit-as:\n\(r.output.suffix(600))")
        }
        #expect(failed > 0, "Python started under every limit tried")
    }
}
