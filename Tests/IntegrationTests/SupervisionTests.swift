import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// hupwatch under a supervisor of its own: sd_notify upward, socket activation, quiet logs, and the
    /// rebind rollback that has to put the path back.
    @Suite(.serialized) struct Supervision {
        @Test func speaksSdNotifyToItsOwnSupervisor() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let address = "@hw-test/\(getpid())/\(UInt32.random(in: 0...UInt32.max))"
            let upstream = try UnixSocket.datagram(boundTo: address)
            var received: [String] = []
            func next(_ prefix: String) throws -> String {
                try waitUntil(10, "a datagram starting with \(prefix.debugDescription); got \(received)") {
                    var buf = [UInt8](repeating: 0, count: 4096)
                    while true {
                        let n = buf.withUnsafeMutableBytes { recv(upstream.raw, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                        if n <= 0 { break }
                        received.append(String(decoding: buf[..<n], as: UTF8.self))
                    }
                    return received.contains { $0.hasPrefix(prefix) }
                }
                let i = received.firstIndex { $0.hasPrefix(prefix) }!
                let message = received[i]
                received.removeSubrange(...i)
                return message
            }
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s], dir: dir, environment: ["NOTIFY_SOCKET=\(address)"])
            defer { hw.kill() }
            let g1 = try hw.waitServing(1)
            #expect(try next("READY=1") == "READY=1\nSTATUS=generation 1 serving, pid \(g1)")
            #expect(environment(of: g1)["NOTIFY_SOCKET"] != address, "each generation gets hupwatch's socket, not ours")

            hw.signal(SIGHUP)
            let reloading = try next("RELOADING=1")
            #expect(reloading.hasPrefix("RELOADING=1\nSTATUS=reloading: starting generation 2\nMONOTONIC_USEC="))
            let usec = UInt64(reloading.components(separatedBy: "MONOTONIC_USEC=").last ?? "") ?? 0
            #expect(usec > 0 && usec <= monotonicNanoseconds() / 1000, "MONOTONIC_USEC is CLOCK_MONOTONIC in µs")
            let g2 = try hw.waitServing(2)
            #expect(try next("READY=1") == "READY=1\nSTATUS=generation 2 serving, pid \(g2)")

            hw.signal(SIGTERM)
            #expect(try next("STOPPING=1") == "STOPPING=1")
            #expect(try hw.waitExit() == 0)
        }

        @Test func socketActivatedHupwatchHandsItsInheritedListenerOn() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("activated.sock")
            let listener = try UnixSocket.listen(path: l, backlog: 16)
            let inode = try #require(boundSocketInode(l))
            // As systemd does: fd 3, LISTEN_FDS=1 and LISTEN_PID naming the process that execs hupwatch.
            let launcher = ["/bin/sh", "-c", "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web; exec \"$0\" \"$@\""]
            let hw = try Hupwatch(["--ready", "notify", "--", try binary("TestChild"), "--notify"], dir: dir,
                                  launcher: launcher, fd3: listener.raw)
            defer { hw.kill() }
            let g1 = try hw.waitServing(1)
            #expect(fdTarget(g1, 3) == "socket:[\(inode)]")
            let env = environment(of: g1)
            #expect(env["LISTEN_FDS"] == "1" && env["LISTEN_PID"] == String(g1) && env["LISTEN_FDNAMES"] == "web")
            #expect(fdTarget(hw.pid, 3) != "socket:[\(inode)]", "hupwatch moved the listener off fd 3")
            #expect(try answeringPid(l) == g1)
            let g2 = try reloadAndCheck(hw, to: 2, answeringAt: l)
            #expect(fdTarget(g2, 3) == "socket:[\(inode)]")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(UnixSocket.inode(atPath: l) != nil, "an inherited listener's path is not hupwatch's to remove")
            _ = listener.raw
        }

        @Test func rollbackAfterTheNewGenerationRebindPutsThePathBack() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            try dir.write("mode", "--notify")
            let hw = try Hupwatch(["--socket", s, "--ready", "notify", "--ready-timeout", "1", "--graceful-timeout", "2", "--",
                                   try modeScript(dir, socket: s)], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            #expect(try answeringPid(s) == old)
            // Generation 2 binds the path (taking it over) but never sends READY=1.
            try dir.write("mode", "")
            hw.signal(SIGHUP)
            let starting = try hw.waitStatus(5, "generation 2 starting") { $0.generations.count == 2 }
            let g2 = try #require(starting.generations.first { $0.generation == 2 }?.pid)
            try hw.waitLog("testchild[\(g2)]: listening")
            #expect(try answeringPid(s) == g2, "the rebind took the path over")
            let st = try hw.waitStatus(10, "the rollback") { $0.last_reload?.generation == 2 && $0.settled }
            #expect(st.last_reload?.outcome == "failed" && st.last_reload?.reason == "was not ready within 1s")
            #expect(hw.lines(containing: "put \(s) back on the serving generation's listener").count == 1)
            #expect(try answeringPid(s) == old, "the old generation's listener is at the path again")
            #expect(hw.lines(containing: "testchild[\(old)]").count == 1, "no signal ever reached the old generation")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func quietLeavesOnlyTheCommandsOutput() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["-q", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            try hw.waitServing(1)
            try reloadAndCheck(hw, to: 2, answeringAt: s)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(hw.lines(containing: "hupwatch[").isEmpty, "\(hw.stderr)")
            #expect(hw.lines(containing: "testchild[").count >= 4)
        }
    }
}
