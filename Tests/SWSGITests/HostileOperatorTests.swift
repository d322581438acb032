import Foundation
import Glibc
import Testing

/// Issue 10, items 1 and 2: what an operator's mistyped --socket path must never do.
extension SWSGIIntegration {
    @Suite struct SocketPathSafety {
        /// Item 1: a regular file at --socket is data, not a stale socket: refused, left byte for byte.
        @Test func regularFileAtSocketPathIsRefusedAndKept() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("important.txt", "precious data\n")
            let (status, output) = try runToExit(["--processes", "1", "--socket", dir.file("important.txt")], in: dir)
            #expect(status != 0)
            #expect(output.contains("important.txt") && output.contains("not a socket"), "\(output)")
            #expect((try? String(contentsOfFile: dir.file("important.txt"), encoding: .utf8)) == "precious data\n")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "swsgi.log" }
            #expect(left == ["important.txt"], "nothing else created: \(left)")
        }

        /// Item 1: a directory at --socket is refused and no temp socket is left beside it.
        @Test func directoryAtSocketPathIsRefusedWithoutLeftovers() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            mkdir(dir.file("d"), 0o755)
            let (status, output) = try runToExit(["--processes", "1", "--socket", dir.file("d")], in: dir)
            #expect(status != 0)
            #expect(output.contains("not a socket"), "\(output)")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            #expect(left == ["d", "swsgi.log"], "\(left)")
        }

        /// Item 1: a symlink at --socket (even to a socket) is refused and kept.
        @Test func symlinkAtSocketPathIsRefusedAndKept() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("target", "x")
            symlink(dir.file("target"), dir.file("link"))
            let (status, output) = try runToExit(["--processes", "1", "--socket", dir.file("link")], in: dir)
            #expect(status != 0)
            #expect(output.contains("not a socket"), "\(output)")
            var st = stat()
            #expect(lstat(dir.file("link"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK)
        }

        /// Item 2: a live listener at the path is an error; the first instance keeps serving its path.
        @Test func liveListenerAtSocketPathIsNotHijacked() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let a = try Server(["--processes", "1", "--app", "hello"], dir: dir, name: "a")
            defer { a.stop() }
            let inode = fileInode(a.socket!)
            let b = try Server(["--processes", "1", "--app", "echo"], dir: dir, ready: false, name: "b")
            defer { b.stop() }
            let status = b.waitExit(timeout: 10)
            #expect(status != nil && status != 0, "B must refuse a live path; log:\n\(b.log)")
            #expect(b.log.contains("in use") || b.log.contains("already serves"), "\(b.log)")
            #expect(fileInode(a.socket!) == inode, "A's socket file is untouched")
            #expect(try a.get("/").text == "Hello, World!\n")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
            #expect(left.isEmpty, "no temp socket left: \(left)")
        }

        /// Item 2: hupwatch's first generation has no predecessor: a live listener there is someone else's.
        @Test func firstHupwatchGenerationDoesNotTakeALivePath() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let a = try Server(["--processes", "1"], dir: dir, name: "a")
            defer { a.stop() }
            let b = try Server(["--processes", "1"], dir: dir, environment: ["HUPWATCH_GENERATION": "1"], ready: false, name: "b")
            defer { b.stop() }
            #expect(b.waitExit(timeout: 10) == 1, "\(b.log)")
            #expect(try a.get("/").status == 200)
        }

        /// Item 2: a stale socket file (nobody listening) is replaced.
        @Test func staleSocketFileIsReplaced() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let fd = try makeListener(dir.file("s"))
            close(fd)  // the file stays, nobody accepts on it
            #expect(fileExists(dir.file("s")))
            let s = try Server(["--processes", "1"], dir: dir)
            defer { s.stop() }
            #expect(try s.get("/").status == 200)
        }
    }

    /// Issue 10, item 5: values validation accepts are safe to compute with: no worker or master traps.
    @Suite struct AbsurdButValidValues {
        @Test(arguments: [
            ["--processes", "2", "--max-requests", "9223372036854775000", "--max-requests-delta", "1000"],
            ["--processes", "20", "--max-worker-lifetime", "1000000000", "--max-worker-lifetime-delta", "999999999"],
            ["--processes", "1", "--harakiri", "1000000000", "--harakiri-graceful-timeout", "1000000000",
             "--worker-reload-mercy", "1000000000", "--keepalive-timeout", "1000000000", "--header-timeout", "1000000000"],
            ["--processes", "1", "--reload-on-rss", "1099511627776", "--evil-reload-on-rss", "1099511627776",
             "--limit-post", "8589934591g", "--buffer-size", "1g", "--listen", "65535"],
        ])
        func serverStartsServesAndStops(_ args: [String]) throws {
            try withServer(args) { s throws in
                for _ in 0..<3 { #expect(try s.get("/").status == 200) }
                s.signal(SIGHUP)
                #expect(s.waitForLog("reloading"))
                #expect(try s.get("/").status == 200)
                #expect(!s.log.contains("died"), "\(s.log)")
                #expect(s.stop() == 0, "\(s.log)")
            }
        }
    }
}
