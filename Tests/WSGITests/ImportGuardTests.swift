// The guards around the app's import (os._exit, exit(), abort(), faults) act only in swsgi's own process
// and thread: a process the app forks during its import (multiprocessing, a daemon helper) ends as Python
// would end it, never through swsgi's refusal, error lines or clean-up; another thread's os._exit and a
// fault still stop swsgi with one line.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    @Suite struct ImportGuards {
        /// Children forked during the import end in each way a child can: multiprocessing's os._exit(code),
        /// abort(), a C exit(), sys.exit(5), and falling off the end of the import. The app answers with
        /// their statuses as the parent saw them.
        static let forkingApp = #"""
        import ctypes, multiprocessing, os, sys

        def warm():
            pass

        statuses = []
        p = multiprocessing.get_context('fork').Process(target=warm)
        p.start()
        p.join(10)
        statuses.append(p.exitcode)

        def child(end):
            pid = os.fork()
            if pid == 0:
                end()
                return
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

        child(os.abort)
        child(lambda: ctypes.CDLL(None).exit(0))
        child(lambda: sys.exit(5))
        # The child returns here and goes on with the import: it must not become a second swsgi.
        child(lambda: None)

        def application(environ, start_response):
            body = ' '.join(str(s) for s in statuses).encode()
            start_response('200 OK', [('Content-Length', str(len(body)))])
            return [body]
        """#

        @Test(arguments: [false, true]) func childrenForkedDuringTheImportEndAsTheirOwn(lazy: Bool) throws {
            var args = ["--processes", "2", "--wsgi-file", "{dir}/forking.py"]
            if lazy { args.append("--lazy-apps") }
            try withPython(args, setUp: { dir in
                try dir.write("forking.py", Self.forkingApp)
                return [:]
            }) { s, _ in
                let r = try s.get("/")
                #expect(r.status == 200 && r.text == "0 -6 0 5 0", "statuses: \(r.text); log:\n\(s.log)")
                let log = s.log
                #expect(!log.contains("ExitAtImport") && !log.contains("could not be loaded") && !log.contains("swsgi: the app"),
                        "no refusal nor error line from a child:\n\(log)")
                #expect(!log.contains("Traceback"), "\(log)")
                #expect(s.isRunning)
                s.signal(SIGTERM)
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
            }
        }

        /// os._exit from a thread the import started, while the import runs: swsgi stops with the app-load
        /// status and one line naming the call, instead of swallowing it and serving.
        @Test(arguments: [("3", false), ("0", false), ("3", true)]) func osExitFromAnotherThreadDuringTheImportStops(status: String, lazy: Bool) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", """
                import os, threading, time
                threading.Thread(target=lambda: os._exit(\(status))).start()
                time.sleep(2)
                def application(e, s):
                    s('200 OK', [])
                    return [b'x']

                """)
            var args = ["--processes", "2", "--wsgi-file", dir.file("app.py")]
            if lazy { args.append("--lazy-apps") }
            let r = try runToExit(args, environment: PythonUnderTest.debian.environment, socket: "s", in: dir, timeout: 15)
            #expect(r.status == 22 /* ExitCode.appLoadFailed */, "exit status \(r.status); log:\n\(r.output)")
            let lines = r.output.split(separator: "\n").filter { $0.contains("os._exit(\(status))") }
            // One line per process that imported the app: the master, or each lazy worker that got that far.
            #expect((1...(lazy ? 2 : 1)).contains(lines.count) && lines.allSatisfy { $0.contains("another thread") },
                    "one line names the call:\n\(r.output)")
            #expect(!r.output.contains("Traceback") && !r.output.contains("Exception in thread"), "\(r.output)")
            #expect(!fileExists(dir.file("s")), "nothing left listening")
            let temporary = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".s") }
            #expect(temporary.isEmpty, "no temporary socket left behind: \(temporary)")
        }

        /// A fault while the master imports the app: one line naming the signal, and the signal's own exit
        /// status (as without swsgi), not a silent 139.
        @Test(arguments: [
            ("import ctypes\nctypes.string_at(0)\n", SIGSEGV, "SIGSEGV"),
            ("import os, signal\nos.kill(os.getpid(), signal.SIGBUS)\n", SIGBUS, "SIGBUS"),
            ("import os, signal\nos.kill(os.getpid(), signal.SIGFPE)\n", SIGFPE, "SIGFPE"),
            ("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n", SIGILL, "SIGILL"),
        ])
        func faultDuringTheImportGetsOneLine(source: String, signal: Int32, name: String) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.py", source + "def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
            let r = try runToExit(["--processes", "2", "--wsgi-file", dir.file("app.py")],
                                  environment: PythonUnderTest.debian.environment, socket: "s", in: dir, timeout: 15)
            #expect(r.status == 128 + signal, "exit status \(r.status); log:\n\(r.output)")
            let lines = r.output.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("(\(name)) while being imported"), "one line:\n\(r.output)")
            #expect(!fileExists(dir.file("s")), "nothing left listening")
            let temporary = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".s") }
            #expect(temporary.isEmpty, "no temporary socket left behind: \(temporary)")
        }
    }
}
