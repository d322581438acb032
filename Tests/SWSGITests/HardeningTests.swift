import Foundation
import Glibc
import Testing

/// Issue 10, item 7: process hygiene, files an attacker can pre-create, and timeouts that start early enough.
extension SWSGIIntegration {
    @Suite struct Hardening {
        /// The header timeout runs from accept: a client idling 0.7 s before its first byte does not get
        /// another full --header-timeout from that byte.
        @Test func headerTimeoutStartsAtAccept() throws {
            try withServer(["--processes", "1", "--header-timeout", "1"]) { s throws in
                let c = try s.connect()
                let t0 = monotonicSeconds()
                usleep(700_000)
                try c.send("G")
                let r = try c.readResponse(timeout: 5)
                let elapsed = monotonicSeconds() - t0
                #expect(r.status == 408)
                #expect(elapsed < 1.4, "408 after \(elapsed) s from accept, --header-timeout 1")
            }
        }

        /// The pid file's temp name cannot be predicted: a symlink planted at the old `PIDFILE.tmp-PID` name
        /// (the shell knows the pid: exec keeps it) is neither followed nor truncated.
        @Test func pidFileTempNameIsNotFollowed() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("victim", "keep me\n")
            let s = try Server(["--processes", "1", "--pid-file", "{dir}/pid"], dir: dir,
                               shell: "ln -s \(dir.file("victim")) \(dir.file("pid")).tmp-$$ && exec \"$0\" \"$@\"")
            defer { s.stop() }
            #expect((try? String(contentsOfFile: dir.file("victim"), encoding: .utf8)) == "keep me\n")
            #expect((try? String(contentsOfFile: dir.file("pid"), encoding: .utf8)) == "\(s.pid)\n")
            var st = stat()
            #expect(lstat(dir.file("pid"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG, "the pid file is a fresh regular file")
        }

        /// Workers leave with _exit: atexit handlers inherited from the master (here from an LD_PRELOADed
        /// library) run once, in the master, not again in every worker.
        @Test func workersDoNotRunInheritedAtexitHandlers() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("atexit.c", """
                #include <stdlib.h>
                #include <unistd.h>
                static void said(void) { write(2, "ATEXIT-RAN\\n", 11); }
                __attribute__((constructor)) static void init(void) { atexit(said); }
                """)
            guard access("/usr/bin/cc", X_OK) == 0 else {
                Issue.record("/usr/bin/cc is missing: apt-get install gcc")
                return
            }
            let cc = try Process.run(URL(fileURLWithPath: "/usr/bin/cc"), arguments: ["-shared", "-fPIC", "-o", dir.file("atexit.so"), dir.file("atexit.c")])
            cc.waitUntilExit()
            #expect(cc.terminationStatus == 0)
            let s = try Server(["--processes", "3"], dir: dir, environment: ["LD_PRELOAD": dir.file("atexit.so")])
            #expect(try s.get("/").status == 200)
            let before = Set(s.waitWorkers(3))
            s.signal(SIGHUP)
            #expect(s.waitWorkers(3, where: { Set($0).isDisjoint(with: before) }).count == 3, "a reload's workers exit too")
            #expect(s.stop() == 0)
            let ran = s.log.components(separatedBy: "ATEXIT-RAN").count - 1
            #expect(ran == 1, "atexit handlers ran \(ran) times (master only expected):\n\(s.log)")
        }
    }
}

extension SWSGIIntegration.Hardening {
    /// A directory inside DIR is swapped for a symlink to a folder outside it, over and over, while
    /// requests run: a path checked with realpath and then opened can be swapped between the two steps.
    /// Opening beneath DIR in one step never serves the outside file.
    @Test func staticSymlinkSwapRaceNeverEscapes() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir.file("www/d"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir.file("outside"), withIntermediateDirectories: true)
        try dir.write("www/d/f.txt", "inside\n")
        try dir.write("outside/f.txt", "OUTSIDE\n")
        try fm.createSymbolicLink(atPath: dir.file("www/d.link"), withDestinationPath: dir.file("outside"))
        let swapper = """
            import os, sys, time
            w = sys.argv[1]
            end = time.monotonic() + float(sys.argv[2])
            while time.monotonic() < end:
                os.rename(w + "/d", w + "/d.real"); os.rename(w + "/d.link", w + "/d")
                os.rename(w + "/d", w + "/d.link"); os.rename(w + "/d.real", w + "/d")
            """
        try dir.write("swap.py", swapper)
        let s = try Server(["--processes", "1", "--app", "static:{dir}/www"], dir: dir)
        defer { s.stop() }
        let candidates: [String] = ["/usr/bin/python3", "/usr/local/bin/python3"]
        guard let python = candidates.first(where: { access($0, X_OK) == 0 }) else {
            Issue.record("python3 is missing: apt-get install python3")
            return
        }
        let swapPID = try spawnProcess(python, [dir.file("swap.py"), dir.file("www"), "3"], environment: [:], outputPath: dir.file("swap.log"))
        defer { var st: Int32 = 0; waitpid(swapPID, &st, 0) }
        var leaks = 0, served = 0
        let c = try s.connect()
        let end = monotonicSeconds() + 2.5
        while monotonicSeconds() < end {
            try c.send(httpGet("/d/f.txt"))
            let r = try c.readResponse(timeout: 5)
            if r.text.contains("OUTSIDE") { leaks += 1 }
            if r.status == 200 { served += 1 }
        }
        #expect(leaks == 0, "served the outside file \(leaks) times")
        #expect(served > 0, "the inside file is still served when the directory is in place")
    }
}
