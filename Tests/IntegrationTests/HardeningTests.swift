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
