import Foundation
import Glibc
import Posix
import Testing

/// HUP, then waits until generation `n` alone serves; checks the old pid is gone and the new one answers.
@discardableResult
func reloadAndCheck(_ hw: Hupwatch, to n: Int, answeringAt path: String?, sourceLocation: SourceLocation = #_sourceLocation) throws -> pid_t {
    let old = try #require(hw.status()?.serving?.pid, sourceLocation: sourceLocation)
    hw.signal(SIGHUP)
    let new = try hw.waitServing(n)
    #expect(new != old, sourceLocation: sourceLocation)
    #expect(statFields(old) == nil, "hupwatch reaped the old generation \(old)", sourceLocation: sourceLocation)
    if let path { #expect(try answeringPid(path) == new, sourceLocation: sourceLocation) }
    let last = hw.status()?.last_reload
    #expect(last?.generation == n && last?.outcome == "succeeded" && last?.reason == "ready",
            "last_reload: \(String(describing: last))", sourceLocation: sourceLocation)
    return new
}

/// A script hupwatch runs as its command; what TestChild does is read from `DIR/mode` at every spawn.
func modeScript(_ dir: TempDir, socket: String) throws -> String {
    let tc = try binary("TestChild")
    try dir.write("run.sh", "#!/bin/sh\nexec \(tc) --socket \(socket) $(cat \(dir.file("mode")) 2>/dev/null)\n", mode: 0o755)
    return dir.file("run.sh")
}

extension HupwatchIntegration {
    /// Items 2, 3, 4 and 11: reloads in every readiness mode, rollbacks, HUP storms, --chdir releases.
    @Suite(.serialized) struct Reloads {
        struct Mode: CustomTestStringConvertible, Sendable {
            let name: String
            let hupwatch: [String]
            let child: [String]
            var minimumReloadMilliseconds = 0
            var testDescription: String { name }
        }

        static let modes: [Mode] = [
            Mode(name: "--ready socket:", hupwatch: ["--ready", "socket:{S}"], child: ["--socket", "{S}"]),
            Mode(name: "--ready notify", hupwatch: ["--ready", "notify"], child: ["--socket", "{S}", "--notify"]),
            Mode(name: "--ready http:/", hupwatch: ["--ready", "http:/"], child: ["--socket", "{S}"]),
            Mode(name: "--ready delay:0.3", hupwatch: ["--ready", "delay:0.3"], child: ["--socket", "{S}"], minimumReloadMilliseconds: 300),
            Mode(name: "auto, notify child", hupwatch: [], child: ["--socket", "{S}", "--notify"]),
            Mode(name: "auto, plain child (detected socket)", hupwatch: [], child: ["--socket", "{S}"]),
            Mode(name: "--listen, auto, notify child", hupwatch: ["--listen", "{S}"], child: ["--notify"]),
            Mode(name: "--listen, auto, plain child (1 s warm-up)", hupwatch: ["--listen", "{S}"], child: [], minimumReloadMilliseconds: 1000),
            Mode(name: "--listen, --ready delay:0.2", hupwatch: ["--listen", "{S}", "--ready", "delay:0.2"], child: [], minimumReloadMilliseconds: 200),
        ]

        @Test(arguments: modes)
        func reloadSwitchesToTheNewGeneration(_ mode: Mode) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let fill = { (a: [String]) in a.map { $0.replacingOccurrences(of: "{S}", with: s) } }
            let hw = try Hupwatch(fill(mode.hupwatch) + ["--ready-timeout", "5", "--", try binary("TestChild")] + fill(mode.child), dir: dir)
            defer { hw.kill() }
            let first = try hw.waitServing(1)
            #expect(try answeringPid(s) == first)
            #expect(hw.status()?.last_reload == nil)
            try reloadAndCheck(hw, to: 2, answeringAt: s)
            let took = try #require(hw.status()?.last_reload?.duration_ms)
            #expect(took >= mode.minimumReloadMilliseconds, "the reload took \(took) ms")
            // A second reload: generation 3 must prove itself the same way (auto remembers READY=1).
            try reloadAndCheck(hw, to: 3, answeringAt: s)
            #expect(hw.lines(containing: "reload failed").isEmpty, "\(hw.stderr)")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func lateReadyOnSharedListenerKeepsTheOldGenerationServing() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            let hw = try Hupwatch(["--listen", l, "--ready", "notify", "--ready-timeout", "10", "--",
                                   try binary("TestChild"), "--notify-delay", "1.5"], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1, timeout: 15)
            let hupAt = Date()
            hw.signal(SIGHUP)
            let pending = try hw.waitStatus(10, "generation 2 starting") { $0.generations.count == 2 }
            #expect(pending.generations.map(\.state) == ["ready", "starting"])
            // Generation 2 starts after the HUP and says READY=1 1.5 s after that: until then the old generation
            // serves untouched.
            var answered = 0
            while Date().timeIntervalSince(hupAt) < 1.4 {
                let alive = isAlive(old)
                let draining = hw.lines(containing: "testchild[\(old)]: draining")
                let current = hw.status()?.current_generation
                _ = try answeringPid(l)
                // What was observed counts only if it was all observed in time (a stalled test thread is not a failure).
                if Date().timeIntervalSince(hupAt) < 1.5 {
                    #expect(alive)
                    #expect(draining.isEmpty, "the old generation was told to stop early")
                    #expect(current == 1)
                    answered += 1
                }
                try hw.checkRunning()
                usleep(20_000)
            }
            #expect(answered > 10)
            try hw.waitStatus(10, "generation 2 to take over") { $0.current_generation == 2 }
            #expect(Date().timeIntervalSince(hupAt) >= 1.5, "generation 2 took over before its READY=1")
            let new = try hw.waitServing(2)
            #expect(hw.lines(containing: "testchild[\(new)]: announced READY=1 late").count == 1)
            #expect(try #require(hw.status()?.last_reload?.duration_ms) >= 1500)
            #expect(try answeringPid(l) == new)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func lateReadyInRebindModeKeepsTheOldPidAnswering() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--ready", "notify", "--ready-timeout", "10", "--",
                                   try binary("TestChild"), "--socket", s, "--ready-delay", "1", "--notify"], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1, timeout: 15)
            let hupAt = Date()
            hw.signal(SIGHUP)
            // The new generation binds 1 s after it starts, which is after the HUP: until then the old pid answers.
            var answered = 0
            while Date().timeIntervalSince(hupAt) < 0.9 {
                let current = hw.status()?.current_generation
                let pid = try answeringPid(s)
                // Answered within 1 s of the HUP, so connected before the new bind: the old listener answered.
                if Date().timeIntervalSince(hupAt) < 1.0 {
                    #expect(pid == old)
                    #expect(current == 1)
                    answered += 1
                }
                usleep(20_000)
            }
            #expect(answered > 5)
            let new = try hw.waitServing(2)
            #expect(try answeringPid(s) == new)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func newGenerationFailingAtStartIsRolledBack() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--socket", s, "--ready", "socket:\(s)", "--ready-timeout", "5", "--", try modeScript(dir, socket: s)], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            #expect(try answeringPid(s) == old)
            try dir.write("mode", "--fail-at-start")
            hw.signal(SIGHUP)
            let st = try hw.waitStatus(10, "the reload to fail") { $0.last_reload?.generation == 2 && $0.settled }
            #expect(st.last_reload?.outcome == "failed")
            #expect(st.last_reload?.reason == "exited before it was ready (exit status 1)")
            #expect(st.current_generation == 1 && st.serving?.pid == old)
            #expect(try answeringPid(s) == old, "the old generation keeps serving")
            #expect(hw.lines(containing: "reload failed: generation 2 exited before it was ready (exit status 1); rolling back, generation 1 keeps serving").count == 1)
            #expect(hw.lines(containing: "testchild[\(old)]").count == 1, "the old generation only ever logged 'listening': no signal reached it")
            #expect(hw.isRunning)

            // Once the release is fixed, the next HUP goes through.
            unlink(dir.file("mode"))
            let new = try reloadAndCheck(hw, to: 3, answeringAt: s)
            #expect(new != old)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func newGenerationNeverReadyIsRolledBack() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--socket", s, "--ready-timeout", "1", "--graceful-timeout", "1", "--", try modeScript(dir, socket: s)], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            var st: StatusDocument

            // Never ready, but stops when told to.
            try dir.write("mode", "--never-ready")
            hw.signal(SIGHUP)
            let starting = try hw.waitStatus(5, "generation 2 starting") { $0.generations.count == 2 }
            let g2 = try #require(starting.generations.first { $0.generation == 2 }?.pid)
            st = try hw.waitStatus(10, "the reload to time out") { $0.last_reload?.generation == 2 && $0.settled }
            #expect(st.last_reload?.outcome == "failed")
            #expect(st.last_reload?.reason == "was not ready within 1s")
            #expect(st.serving?.pid == old)
            #expect(statFields(g2) == nil, "the failed generation was stopped and reaped")
            // It stops on the reload signal (killed by it, should it come before TestChild set up its signalfd).
            #expect(hw.lines(containing: "generation 2 exited before it was ready (exit status 0)").count + hw.lines(containing: "generation 2 exited before it was ready (killed by SIGTERM)").count == 1)
            #expect(try answeringPid(s) == old)

            // Never ready and deaf to SIGTERM: SIGKILL to its group once --graceful-timeout passes.
            try dir.write("mode", "--never-ready --ignore-term")
            hw.signal(SIGHUP)
            let starting3 = try hw.waitStatus(5, "generation 3 starting") { $0.generations.count == 2 }
            let g3 = try #require(starting3.generations.first { $0.generation == 3 }?.pid)
            st = try hw.waitStatus(10, "generation 3 to be killed") { $0.last_reload?.generation == 3 && $0.settled }
            #expect(st.last_reload?.reason == "was not ready within 1s")
            #expect(hw.lines(containing: "generation 3 (pid \(g3)) still running 1s after it was told to stop: SIGKILL to its process group").count == 1)
            #expect(hw.lines(containing: "generation 3 exited before it was ready (killed by SIGKILL)").count == 1)
            #expect(statFields(g3) == nil)

            #expect(st.serving?.pid == old)
            #expect(try answeringPid(s) == old, "the old generation served throughout")
            #expect(hw.lines(containing: "testchild[\(old)]").count == 1, "no signal ever reached the old generation")
            #expect(hw.lines(containing: "reload failed: generation 2 was not ready within 1s; rolling back, generation 1 keeps serving").count == 1)
            #expect(hw.isRunning)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func terminateDuringAReloadStopsBothAndExitsWithTheServingStatus() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            try dir.write("mode", "--exit-code 7")
            let hw = try Hupwatch(["--socket", s, "--ready-timeout", "30", "--graceful-timeout", "5", "--", try modeScript(dir, socket: s)], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            try dir.write("mode", "--never-ready --exit-code 9")
            hw.signal(SIGHUP)
            let st = try hw.waitStatus(5, "generation 2 starting") { $0.generations.count == 2 }
            let new = try #require(st.generations.first { $0.generation == 2 }?.pid)
            // Once it says so, it handles SIGTERM (before that, SIGTERM's default action would kill it).
            try hw.waitLog("testchild[\(new)]: never becoming ready")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 7, "the serving generation's status, not the new one's 9")
            #expect(hw.lines(containing: "testchild[\(old)]: draining").count == 1)
            #expect(hw.lines(containing: "generation 2 exited before it was ready (exit status 9)").count == 1,
                    "the starting generation got SIGTERM too: \(hw.stderr)")
            #expect(statFields(old) == nil || !isAlive(old))
            #expect(statFields(new) == nil || !isAlive(new))
        }

        @Test func stormOfFiftyHangupsEndsWithOneGeneration() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--ready", "delay:0.3", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            let first = try hw.waitServing(1)
            for _ in 0..<50 { kill(hw.pid, SIGHUP) }
            // The first HUP starts a reload that takes 0.3 s; the other 49 fold into at most one more.
            let st = try hw.waitStatus(15, "one generation after the storm") { ($0.current_generation ?? 0) >= 2 && $0.settled }
            let last = try #require(st.current_generation)
            #expect(last == 2 || last == 3, "50 HUPs made \(last - 1) reloads")
            let pid = try #require(st.serving?.pid)
            #expect(pid != first)
            #expect(children(of: hw.pid) == [pid], "exactly one generation is left in /proc")
            #expect(statFields(first) == nil)
            #expect(try answeringPid(s) == pid)
            #expect(hw.lines(containing: "reload failed").isEmpty)
            #expect(hw.isRunning)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func relativeChdirAndCommandFromHupwatchsWorkingDirectory() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let tc = try binary("TestChild")
            let fm = FileManager.default
            for release in ["r1", "r2"] {
                try fm.createDirectory(atPath: dir.file("releases/\(release)"), withIntermediateDirectories: true)
                try dir.write("releases/\(release)/run.sh", "#!/bin/sh\nexec \(tc) --socket \(s)\n", mode: 0o755)
            }
            #expect(symlink("releases/r1", dir.file("current")) == 0)
            // hupwatch runs in DIR: both --chdir and the command are relative to it.
            let hw = try Hupwatch(["--socket", s, "--chdir", "current", "--", "./run.sh"], dir: dir,
                                  launcher: ["/bin/sh", "-c", "cd \(dir.path) && exec \"$0\" \"$@\""])
            defer { hw.kill() }
            let g1 = try hw.waitServing(1)
            #expect(try fm.destinationOfSymbolicLink(atPath: "/proc/\(g1)/cwd") == dir.file("releases/r1"))
            #expect(symlink("releases/r2", dir.file("current.new")) == 0)
            #expect(rename(dir.file("current.new"), dir.file("current")) == 0)
            let g2 = try reloadAndCheck(hw, to: 2, answeringAt: s)
            #expect(try fm.destinationOfSymbolicLink(atPath: "/proc/\(g2)/cwd") == dir.file("releases/r2"))
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func chdirSymlinkSwitchRunsTheNewReleaseAndFilesAreWritten() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let tc = try binary("TestChild")
            let fm = FileManager.default
            for (release, code) in [("r1", 11), ("r2", 12)] {
                try fm.createDirectory(atPath: dir.file("releases/\(release)"), withIntermediateDirectories: true)
                try dir.write("releases/\(release)/run.sh", "#!/bin/sh\nexec \(tc) --socket \(s) --exit-code \(code)\n", mode: 0o755)
            }
            #expect(symlink("releases/r1", dir.file("current")) == 0)
            let pidFile = dir.file("hw.pid")
            let hw = try Hupwatch(["--chdir", dir.file("current"), "--pid-file", pidFile, "--socket", s, "--", "./run.sh"], dir: dir)
            defer { hw.kill() }
            let g1 = try hw.waitServing(1)
            #expect(dir.read("hw.pid") == "\(hw.pid)\n")
            #expect(try fm.destinationOfSymbolicLink(atPath: "/proc/\(g1)/cwd") == dir.file("releases/r1"))
            #expect(commandLine(of: g1).suffix(2) == ["--exit-code", "11"])

            // The status file: hupwatch's pid, the live generation, no reload yet.
            let raw = try #require(dir.readIfExists("hupwatch.status.json"))
            #expect(raw.hasPrefix("{\"pid\":\(hw.pid),\"control\":\"/tmp/hupwatch."))
            #expect(raw.contains("\"stopping\":false,\"current_generation\":1,\"generations\":[{\"generation\":1,\"pid\":\(g1),\"state\":\"ready\",\"serving\":true,\"age_ms\":"))
            #expect(raw.hasSuffix("}],\"last_reload\":null,\"reloads\":[]}\n"))

            // Deploy: switch the symlink atomically, then HUP.
            #expect(symlink("releases/r2", dir.file("current.new")) == 0)
            #expect(rename(dir.file("current.new"), dir.file("current")) == 0)
            let g2 = try reloadAndCheck(hw, to: 2, answeringAt: s)
            #expect(try fm.destinationOfSymbolicLink(atPath: "/proc/\(g2)/cwd") == dir.file("releases/r2"))
            #expect(commandLine(of: g2).suffix(2) == ["--exit-code", "12"])
            let st = try #require(hw.status())
            #expect(st.pid == hw.pid && !st.stopping)
            #expect(st.generations.count == 1 && st.generations[0].generation == 2 && st.generations[0].pid == g2)
            #expect(st.last_reload?.outcome == "succeeded" && st.last_reload?.generation == 2)
            #expect((st.last_reload?.duration_ms ?? -1) >= 0)

            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 12, "the new release ran and its exit status is hupwatch's")
            #expect(!dir.exists("hw.pid"), "the pid file is removed at exit")
            let final = try #require(hw.status())
            #expect(final.stopping && final.generations.isEmpty && final.current_generation == nil)
        }
    }
}
