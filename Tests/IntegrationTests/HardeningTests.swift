import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// Cases an outside attack on the redesigned core found; each failed before its fix.
    @Suite(.serialized) struct Hardening {
        @Test func aRemovedPrivateFolderIsMadeAgainAtTheNextReload() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let tmp = dir.file("tmp")
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", dir.file("a.sock"), "--notify"], dir: dir, environment: ["TMPDIR=\(tmp)"])
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            let folders = try FileManager.default.contentsOfDirectory(atPath: tmp)
            #expect(folders.count == 1 && folders[0].hasPrefix("hupwatch."))
            try FileManager.default.removeItem(atPath: tmp + "/" + folders[0])
            hw.signal(SIGHUP)
            _ = try hw.waitServing(2)
            #expect(hw.lines(containing: "was removed; made it again").count == 1)
            let r = try runHupwatch(["status", String(hw.pid)], dir: dir)
            #expect(r.code == 0, "the control socket is back too: \(r.stderr)")
        }

        @Test func aFailedSetUpLeavesNothingBehind() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let tmp = dir.file("tmp")
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
            try dir.write("file.sock", "precious")
            let hw = try Hupwatch(["--listen", dir.file("l.sock"), "--listen", dir.file("file.sock"), "--", "/bin/true"], dir: dir,
                                  statusFile: false, environment: ["TMPDIR=\(tmp)"])
            defer { hw.kill() }
            #expect(try hw.waitExit() == 3)
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "no private folder left")
            #expect(UnixSocket.inode(atPath: dir.file("l.sock")) == nil, "the first listener's path was removed again")
            #expect(dir.read("file.sock") == "precious")
        }

        @Test func descendantsThatLeftTheGroupDoNotOutliveHupwatch() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let tc = try binary("TestChild")
            try dir.write("run.sh", "#!/bin/sh\nsetsid sleep 600 &\necho $! > \(dir.file("orphan"))\nexec \(tc) --socket \(dir.file("a.sock"))\n", mode: 0o755)
            let hw = try Hupwatch(["--ready", "socket:\(dir.file("a.sock"))", "--", dir.file("run.sh")], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            try waitUntil(5, "the orphan's pid") { pid_t(dir.read("orphan").filter { !$0.isWhitespace }) != nil }
            let orphan = pid_t(dir.read("orphan").filter { !$0.isWhitespace })!
            hw.outliving.append(orphan)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(!isAlive(orphan), "the setsid'd descendant went with hupwatch")
        }

        @Test func socketActivationRefusesAProbeThatCannotTellGenerationsApart() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = try makeListener(dir.file("act.sock"))
            defer { close(l) }
            let launcher = ["/bin/sh", "-c", "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\""]
            let hw = try Hupwatch(["--ready", "socket:\(dir.file("act.sock"))", "--", try binary("TestChild")], dir: dir,
                                  launcher: launcher, fd3: l)
            defer { hw.kill() }
            #expect(try hw.waitExit() == 3)
            #expect(hw.stderr.contains("cannot be used with an inherited listener"))
        }
    }
}

extension HupwatchIntegration {
    /// Cases the outside attack on issue 12 found.
    @Suite(.serialized) struct HardeningEverywhere {
        @Test func aNotifyFdThatWasNotHandedInIsRefusedOrIgnored() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let r = try runHupwatch(["--notify-fd", "3", "--", try binary("TestChild"), "--socket", dir.file("a.sock")], dir: dir)
            #expect(r.code == 3)
            #expect(r.stderr.contains("--notify-fd 3: not an open file descriptor"))
            // The s6 file convention naming an fd nobody passed: ignored, hupwatch works as usual.
            try dir.write("notification-fd", "3\n")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", dir.file("b.sock")], dir: dir, launcher: ["/bin/sh", "-c", "cd \(dir.path) && exec \"$0\" \"$@\""])
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            hw.signal(SIGHUP)
            _ = try hw.waitServing(2)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0, "hupwatch still has its own fds: \(hw.stderr)")
        }

        @Test func aCommandNamingTwoSocketPathsGetsNoRewriteAndAWarning() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let hw = try Hupwatch(["--", try binary("swsgi"), "--socket", dir.file("s1.sock"), "--socket", dir.file("s2.sock"), "--processes", "1"], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            #expect(hw.lines(containing: "the command names several socket paths").count == 1)
            hw.signal(SIGHUP)
            _ = try hw.waitServing(2)
            #expect(unixGet(dir.file("s2.sock")).map(\.status) == .success(200))
        }

        @Test func aRelativeSocketPathIsTheOneInTheChdirFolder() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: false)
            let hw = try Hupwatch(["--ready-timeout", "5", "--chdir", dir.file("sub"), "--", try binary("TestChild"), "--socket", "./rel.sock"], dir: dir)
            defer { hw.kill() }
            let g1 = try hw.waitServing(1)
            #expect(try answeringPid(dir.file("sub/rel.sock")) == g1)
            hw.signal(SIGHUP)
            let g2 = try hw.waitServing(2)
            #expect(try answeringPid(dir.file("sub/rel.sock")) == g2)
        }

        @Test func silentControlClientsDoNotLockTheVerbsOut() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", dir.file("a.sock")], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            let raw = try String(contentsOfFile: hw.statusPath, encoding: .utf8)
            let marker = try #require(raw.range(of: "\"control\":\""))
            let control = String(raw[marker.upperBound...].prefix { $0 != "\"" })
            // 300 callers that connect and say nothing: more than hupwatch keeps slots for (256).
            var idle: [Int32] = []
            defer { idle.forEach { close($0) } }
            try waitUntil(10, "300 silent connections") {
                if let fd = try? UnixSocket.connect(path: control, nonBlocking: true).release() { idle.append(fd) }
                return idle.count >= 300
            }
            var code: Int32 = -1
            try waitUntil(10, "hupwatch status to answer despite the silent callers") {
                code = (try? runHupwatch(["status", String(hw.pid)], dir: dir).code) ?? -1
                return code == 0
            }
        }

        @Test func reapedGenerationsLeaveNoPrivatePathBehind() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", dir.file("app.sock")], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            for n in 2...4 {
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n)
                _ = try hw.waitStatus(10, "generation \(n) alone") { $0.settled }
            }
            try waitUntil(5, "only the serving generation's private path") {
                ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".app.sock.g") } == [".app.sock.g4"]
            }
        }
    }
}
