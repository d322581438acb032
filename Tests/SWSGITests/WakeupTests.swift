import Foundation
import Glibc
import Testing

/// Voluntary context switches of a process so far (each blocking wait that returned is one).
func contextSwitches(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("voluntary_ctxt_switches:") }) else { return nil }
    return Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "")
}

/// Issue 10, item 6: idle means zero wake-ups; repeated errors do not flood the log.
extension SWSGIIntegration {
    @Suite struct Wakeups {
        /// A retiring worker waiting on a client's unfinished head sleeps until that head's deadline.
        @Test func retiringWorkerWithAnUnfinishedHeadDoesNotSpin() throws {
            try withServer(["--processes", "1", "--header-timeout", "20"]) { s throws in
                let old = s.waitWorkers(1)[0]
                let c = try s.connect()
                try c.send("GET / HTTP/1.1\r\nHost: t\r\n")
                #expect(try s.get("/").status == 200)
                s.signal(SIGHUP)
                _ = s.waitWorkers(2)
                usleep(400_000)  // past the worker's 200 ms retire grace
                let before = contextSwitches(old) ?? 0
                let master0 = contextSwitches(s.pid) ?? 0
                usleep(1_000_000)
                let after = contextSwitches(old) ?? .max
                let master1 = contextSwitches(s.pid) ?? .max
                #expect(after - before < 5, "retiring worker woke \(after - before) times in 1 s")
                #expect(master1 - master0 < 5, "idle master woke \(master1 - master0) times in 1 s")
                _ = c
            }
        }

        /// Every fork fails (no fd for the harakiri timer: RLIMIT_NOFILE 8 leaves none once the master's own
        /// are open; the shell closes whatever low fds the test process let through): the same error is logged once per second
        /// with a count, not once per worker per retry.
        @Test func failingForksAreRateLimited() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            // The lowest RLIMIT_NOFILE with which the master starts but no worker gets its timer fd
            // (the master's own fd count is not this test's business).
            var server: Server? = nil
            for limit in 8...24 {
                let s = try Server(["--processes", "300", "--harakiri", "5"], dir: dir,
                                   shell: "exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec prlimit --nofile=\(limit) \"$0\" \"$@\"",
                                   ready: false, name: "swsgi-\(limit)")
                _ = waitUntil(5) { !s.isRunning || s.log.contains("cannot fork worker 1:") }
                if s.isRunning && s.log.contains("cannot fork worker 1:") { server = s; break }
                s.stop()
            }
            let s = try #require(server, "no RLIMIT_NOFILE made the forks fail")
            defer { s.stop() }
            #expect(s.waitForLog("cannot fork worker", timeout: 10), "\(s.log)")
            usleep(3_200_000)
            let lines = s.logLines
            #expect(lines.count < 120, "\(lines.count) lines in 3 s:\n\(lines.prefix(20).joined(separator: "\n"))")
            #expect(lines.contains { $0.contains("similar lines") }, "the suppressed count is reported:\n\(lines.joined(separator: "\n"))")
            #expect(!lines.contains { $0.contains("crash-looping") }, "a failing fork is not a crash loop")
        }
    }
}
