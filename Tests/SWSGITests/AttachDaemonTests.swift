import Foundation
import Glibc
import Testing

private func lines(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

private func alive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 && !(processState(pid) == "Z") }

private func processState(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(close, offsetBy: 2)...].split(separator: " ").first.map(String.init)
}

extension SWSGIIntegration {
    /// uWSGI's attach-daemon / attach-daemon2 (core/daemons.c): the master runs the command, respawns it
    /// when it dies (throttled as uWSGI does), and stops its process group at exit.
    @Suite struct AttachDaemon {
        @Test func theMasterRunsRespawnsAndStopsItsDaemons() throws {
            try withServer(["--processes", "1", "--ini", "{dir}/app.ini"], setup: { dir in
                try dir.write("app.ini", """
                    [uwsgi]
                    attach-daemon = echo $$ >> %ddaemon.pids; exec sleep 300
                    attach-daemon2 = cmd=trap 'echo got-int >> %dsecond.log; exit 0' INT; echo $$ >> %dsecond.pids; while true; do sleep 0.1; done,stopsignal=INT
                    """)
            }) { s throws in
                let pids = s.dir.file("daemon.pids")
                #expect(waitUntil(10) { lines(pids).count == 1 && lines(s.dir.file("second.pids")).count == 1 }, "\(s.log)")
                let first = try #require(Int32(lines(pids)[0]))
                #expect(alive(first))
                #expect(s.log.contains("attach-daemon: started \"echo $$ >> \(s.dir.path)/daemon.pids; exec sleep 300\" (pid \(first))"), "\(s.log)")
                // Killed: respawned after uWSGI's throttle (started under 3 s ago: 1 s).
                kill(first, SIGKILL)
                #expect(waitUntil(10) { lines(pids).count == 2 }, "respawned: \(s.log)")
                #expect(s.log.contains("died (killed by SIGKILL): respawning") || s.log.contains("died ("), "\(s.log)")
                #expect(s.log.contains("attach-daemon: throttling"), "\(s.log)")
                let second = try #require(Int32(lines(pids)[1]))
                let other = try #require(Int32(lines(s.dir.file("second.pids"))[0]))
                // At exit each daemon's group gets its stop signal (SIGINT for the second, as configured).
                s.signal(SIGTERM)
                #expect(s.waitExit(timeout: 10) == 0, "\(s.log)")
                #expect(!alive(second) && !alive(other), "the daemons are stopped with the server")
                #expect(lines(s.dir.file("second.log")) == ["got-int"], "stopsignal=INT reached the daemon")
            }
        }

        /// uWSGI's daemons get PR_SET_PDEATHSIG SIGKILL (core/daemons.c): a master killed with SIGKILL leaves no
        /// daemon running on its own, unstoppable by anyone who does not know its pid.
        @Test func aDaemonDiesWithAMasterKilledBySIGKILL() throws {
            try withServer(["--processes", "1", "--attach-daemon", "echo $$ >> {dir}/daemon.pids; exec sleep 300"]) { s throws in
                let pids = s.dir.file("daemon.pids")
                #expect(waitUntil(10) { lines(pids).count == 1 }, "\(s.log)")
                let daemon = try #require(Int32(lines(pids)[0]))
                defer { if alive(daemon) { kill(daemon, SIGKILL) } }
                s.signal(SIGKILL)
                _ = s.waitExit(timeout: 10)
                #expect(waitUntil(5) { !alive(daemon) }, "the daemon outlived its SIGKILLed master")
            }
        }

        @Test func aControlDaemonStopsTheServerWhenItDies() throws {
            try withServer(["--processes", "1", "--attach-control-daemon", "sleep 0.5"]) { s throws in
                #expect(s.waitExit(timeout: 10) == 0, "\(s.log)")
                #expect(s.log.contains("attach-control-daemon: \"sleep 0.5\""), "\(s.log)")
            }
        }
    }
}
