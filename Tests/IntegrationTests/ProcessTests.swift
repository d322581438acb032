import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// Items 6-10: signals in and out, the socket path guard, --on-exit, --kill-at-exit, the subreaper.
    @Suite(.serialized) struct Processes {
        struct Stop: CustomTestStringConvertible, Sendable {
            let signal: Int32
            let child: [String]
            let code: Int32
            var testDescription: String { "\(SignalName.name(signal)) to \(child.first == "/bin/sleep" ? "sleep" : "TestChild \(child.joined(separator: " "))") -> \(code)" }
        }

        static let stops: [Stop] = [
            Stop(signal: SIGTERM, child: ["--exit-code", "7"], code: 7),
            Stop(signal: SIGINT, child: ["--exit-code", "7"], code: 7),
            Stop(signal: SIGQUIT, child: ["--exit-code", "7"], code: 7),
            Stop(signal: SIGTERM, child: [], code: 0),
            Stop(signal: SIGTERM, child: ["/bin/sleep", "1000"], code: 143),
            Stop(signal: SIGINT, child: ["/bin/sleep", "1000"], code: 130),
        ]

        @Test(arguments: stops)
        func stopSignalsAreForwardedAndTheChildStatusIsHupwatchs(_ stop: Stop) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let command = stop.child.first == "/bin/sleep" ? ["--ready", "delay:0.05", "--"] + stop.child
                : ["--", try binary("TestChild"), "--socket", s] + stop.child
            let hw = try Hupwatch(command, dir: dir)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            hw.signal(stop.signal)
            #expect(try hw.waitExit() == stop.code)
            #expect(hw.lines(containing: "received \(SignalName.name(stop.signal)): stopping every generation").count == 1)
            if stop.child.first != "/bin/sleep" {
                #expect(hw.lines(containing: "testchild[\(child)]: draining").count == 1)
            }
            #expect(statFields(child) == nil)
        }

        @Test func childIgnoringTermIsKilledAfterGracefulTimeout() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--graceful-timeout", "1", "--", try binary("TestChild"), "--socket", s, "--ignore-term"], dir: dir)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            let start = Date()
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 137, "SIGKILL: 128 + 9")
            #expect(Date().timeIntervalSince(start) >= 0.9, "not before --graceful-timeout")
            #expect(hw.lines(containing: "testchild[\(child)]: SIGTERM ignored").count == 1)
            #expect(hw.lines(containing: "generation 1 (pid \(child)) still running 1s after it was told to stop: SIGKILL to its process group").count == 1)
        }

        @Test func otherSignalsGoToTheServingGeneration() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            var child = try hw.waitServing(1)
            for sig in [SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU] {
                hw.signal(sig)
                try hw.waitLog("testchild[\(child)]: got \(SignalName.name(sig))")
            }
            // After a reload they go to the new generation.
            child = try reloadAndCheck(hw, to: 2, answeringAt: s)
            hw.signal(SIGUSR1)
            try hw.waitLog("testchild[\(child)]: got SIGUSR1")
            #expect(hw.lines(containing: "got SIGUSR1").count == 2)
            #expect(hw.isRunning)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        /// The guard, as it works where rewrite mode is off (or the path is in a config file hupwatch cannot see).
        @Test func socketPathGuardRestoresWhatTheOldGenerationRemoved() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--no-rewrite", "--", try binary("TestChild"), "--socket", s, "--unlink-at-exit"], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            #expect(hw.lines(containing: "protection: guard on \(s) (found in the command line)").count == 1)
            for n in 2...3 {
                let before = try #require(hw.status()?.serving?.pid)
                hw.signal(SIGHUP)
                let new = try hw.waitServing(n)
                // The old generation unlinked the path on its way out, like gunicorn does.
                #expect(hw.lines(containing: "testchild[\(before)]: removed \(s) without checking").count == 1)
                try hw.waitLog("socket path \(s) was removed; restored it to the serving listener", 5)
                try waitUntil(5, "\(s) to exist again") { UnixSocket.inode(atPath: s) != nil }
                #expect(try answeringPid(s) == new, "the path serves the new generation")
                #expect(hw.lines(containing: "was removed; restored it").count == n - 1)
                // The stable link nginx may use as a backup upstream leads to the same listener.
                let link = dir.file(".s.sock.hupwatch")
                #expect(UnixSocket.inode(atPath: link) == UnixSocket.inode(atPath: s))
                #expect(try answeringPid(link) == new)
            }
            _ = old
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(!dir.exists(".s.sock.hupwatch"), "the guard link goes with hupwatch")
        }

        @Test func withoutTheGuardTheRemovedPathStaysGone() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--no-guard", "--no-rewrite", "--", try binary("TestChild"), "--socket", s, "--unlink-at-exit"], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            #expect(hw.lines(containing: "guarding socket path").isEmpty)
            hw.signal(SIGHUP)
            let new = try hw.waitServing(2)
            #expect(hw.lines(containing: "testchild[\(old)]: removed \(s) without checking").count == 1)
            #expect(UnixSocket.inode(atPath: s) == nil, "the old generation deleted the new one's path")
            #expect(isAlive(new))
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func onExitExitEndsHupwatchWithTheChildStatus() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s, "--exit-code", "5"], dir: dir)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            kill(child, SIGTERM)   // the child stops on its own account, not through hupwatch
            #expect(try hw.waitExit() == 5)
            #expect(hw.lines(containing: "generation 1 exited (exit status 5); hupwatch exits with status 5").count == 1)

            let hw2 = try Hupwatch(["--on-exit", "exit", "--", try binary("TestChild"), "--socket", s], dir: dir, name: "second")
            defer { hw2.kill() }
            let child2 = try hw2.waitServing(1)
            kill(child2, SIGKILL)
            #expect(try hw2.waitExit() == 137)
        }

        @Test func onExitRestartStartsANewGeneration() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--on-exit", "restart", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            let first = try hw.waitServing(1)
            kill(first, SIGKILL)
            let second = try hw.waitServing(2)
            #expect(second != first)
            #expect(try answeringPid(s) == second)
            #expect(hw.lines(containing: "generation 1 exited (killed by SIGKILL)").count == 1)
            #expect(hw.lines(containing: "restarting now").count == 1, "the first restart is immediate")
            #expect(hw.lines(containing: "restarting in").isEmpty)
            kill(second, SIGTERM)
            let third = try hw.waitServing(3)
            #expect(try answeringPid(s) == third)
            #expect(hw.lines(containing: "restarting in 500ms (crash loop)").count == 1, "a second crash soon after is a crash loop: back-off")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func killAtExitTakesTheChildAlongWhenHupwatchIsKilled() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["-k", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            hw.outliving = [child]
            hw.signal(SIGKILL)
            #expect(try hw.waitExit() == 137)
            try waitGone(child, 10, "after hupwatch was SIGKILLed with --kill-at-exit")
        }

        @Test func withoutKillAtExitTheChildSurvivesHupwatch() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            hw.outliving = [child]
            hw.signal(SIGKILL)
            #expect(try hw.waitExit() == 137)
            // Any parent-death signal went out as hupwatch died; the child still answers afterwards.
            #expect(try answeringPid(s) == child)
            #expect(isAlive(child))
            kill(child, SIGTERM)
            try waitGone(child, 10)
        }

        @Test func grandchildOfARetiredGenerationIsKilledAndReaped() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s, "--grandchild"], dir: dir)
            var grandchildren: [pid_t] = []
            defer {
                hw.kill()
                for g in grandchildren where isAlive(g) { kill(g, SIGKILL) }
                for g in grandchildren { try? waitGone(g, 5) }
            }
            func grandchild(of pid: pid_t) throws -> pid_t {
                let marker = "testchild[\(pid)]: forked grandchild "
                try hw.waitLog(marker)
                let line = try #require(hw.lines(containing: marker).first)
                let g = try #require(pid_t(line.components(separatedBy: marker)[1]))
                grandchildren.append(g)
                return g
            }
            let g1 = try hw.waitServing(1)
            let gc1 = try grandchild(of: g1)
            #expect(statFields(gc1)?[2] == String(g1), "the grandchild is in generation 1's process group")
            #expect(isAlive(gc1))

            let g2 = try reloadAndCheck(hw, to: 2, answeringAt: s)
            let gc2 = try grandchild(of: g2)
            // Generation 1 exited; its orphan went to hupwatch (the subreaper), was SIGKILLed with the group and reaped.
            try waitUntil(10, "grandchild \(gc1) to be reaped (state: \(statFields(gc1)?.first ?? "gone"))") { statFields(gc1) == nil }
            #expect(isAlive(gc2), "the serving generation's grandchild is left alone")
            #expect(hw.isRunning)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            try waitGone(gc2, 10, "(generation 2's group is SIGKILLed as hupwatch exits)")
        }
    }
}
