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

extension WSGIIntegration.ProcessSide {
    /// `gevent = 256` (request threads) with a `limit-as` that holds Python but not 256 thread stacks of
    /// 8 MiB: uWSGI's greenlets fit, swsgi's threads cannot start. The worker cannot serve as configured:
    /// swsgi stops at once, non-zero, with a line naming the thread, limit-as and what to change; it does
    /// not respawn the worker forever on `pthread_create: Resource temporarily unavailable`.
    @Test func requestThreadsBeyondLimitAsStopWithAClearLine() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.py", "def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
        try dir.write("app.ini", "[uwsgi]\nwsgi-file = %dapp.py\nprocesses = 1\ngevent = 256\nlimit-as = 1024\nhttp-socket = %ds\n")
        // The stack size threads get by default (RLIMIT_STACK), fixed here whatever the test runner's is.
        let s = try Server([dir.file("app.ini")], dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                           shell: "ulimit -s 8192; exec \"$0\" --ini \"$@\"", ready: false)
        defer { s.stop() }
        let status = s.waitExit(timeout: 15)
        #expect(status != nil && status != 0, "status \(status.map(String.init) ?? "still running"):\n\(s.log.suffix(1500))")
        #expect(s.logLines.contains { $0.contains("request thread") && $0.contains("--limit-as 1024") }, "\(s.log.suffix(1500))")
        #expect(s.log.components(separatedBy: "respawning").count <= 2, "respawned again and again:\n\(s.log.suffix(1500))")
    }
}
