import Foundation
import Glibc
import Posix
import Testing

@Suite struct SignalNameTests {
    @Test func parsesNamesAndNumbers() {
        #expect(SignalName.parse("TERM") == SIGTERM)
        #expect(SignalName.parse("SIGTERM") == SIGTERM)
        #expect(SignalName.parse("term") == SIGTERM)
        #expect(SignalName.parse("SigHup") == SIGHUP)
        #expect(SignalName.parse("15") == 15)
        #expect(SignalName.parse("USR1") == SIGUSR1)
        #expect(SignalName.parse("WINCH") == SIGWINCH)
        #expect(SignalName.parse("KILL") == SIGKILL)
        #expect(SignalName.parse("64") == 64, "real-time signals by number")
        for bad in ["", "0", "65", "-15", "SIG", "BOGUS", "SIGBOGUS", " TERM", "RTMIN"] {
            #expect(SignalName.parse(bad) == nil, "'\(bad)' is not a signal")
        }
    }

    @Test func names() {
        #expect(SignalName.name(SIGTERM) == "SIGTERM")
        #expect(SignalName.name(SIGHUP) == "SIGHUP")
        #expect(SignalName.name(SIGKILL) == "SIGKILL")
        #expect(SignalName.name(40) == "signal 40")
        for sig: Int32 in 1...31 where SignalName.name(sig).hasPrefix("SIG") {
            #expect(SignalName.parse(SignalName.name(sig)) == sig, "name and parse agree for \(sig)")
        }
    }
}

@Suite struct ProcessEndTests {
    @Test func decodesWaitStatus() {
        #expect(ProcessEnd(waitStatus: 0) == .exited(0))
        #expect(ProcessEnd(waitStatus: 7 << 8) == .exited(7))
        #expect(ProcessEnd(waitStatus: 255 << 8) == .exited(255))
        #expect(ProcessEnd(waitStatus: 9) == .signaled(9))
        #expect(ProcessEnd(waitStatus: 0x80 | 11) == .signaled(11), "a core dump is still death by signal 11")
    }

    @Test func shellCodesAndText() {
        #expect(ProcessEnd.exited(7).shellCode == 7)
        #expect(ProcessEnd.signaled(9).shellCode == 137)
        #expect(ProcessEnd.signaled(15).shellCode == 143)
        #expect(ProcessEnd.exited(3).description == "exit status 3")
        #expect(ProcessEnd.signaled(9).description == "killed by SIGKILL")
    }
}

@Suite struct PathAndEnvironmentTests {
    @Test func splitPathParts() {
        #expect(splitPath("/tmp/a.sock") == ("/tmp", "a.sock"))
        #expect(splitPath("/a.sock") == ("/", "a.sock"))
        #expect(splitPath("a.sock") == (".", "a.sock"))
        #expect(splitPath("run/x/a.sock") == ("run/x", "a.sock"))
    }

    @Test func isDirectoryChecks() {
        #expect(isDirectory("/tmp"))
        #expect(!isDirectory("/bin/sh"))
        #expect(!isDirectory("/nonexistent-hw-dir"))
    }

    @Test func lookupAndRemove() {
        let env = ["A=1", "B=x=y", "LISTEN_FDS=2", "A=2", "NOEQUALS"]
        #expect(lookup("A", in: env) == "2", "the last one wins, as getenv's callers see after putenv")
        #expect(lookup("B", in: env) == "x=y")
        #expect(lookup("C", in: env) == nil)
        #expect(lookup("NOEQUALS", in: env) == nil)
        #expect(removing(["A", "LISTEN_FDS"], from: env) == ["B=x=y", "NOEQUALS"])
        #expect(environmentSnapshot().contains { $0.hasPrefix("PATH=") })
    }

    @Test func syscallErrorText() {
        let e = SyscallError("bind", errno: EADDRINUSE, context: "app.sock")
        #expect(e.description == "bind(app.sock): Address already in use")
        #expect(SyscallError("poll", errno: EINTR).description == "poll: Interrupted system call")
        #expect(throws: SyscallError("open", errno: ENOENT, context: "/nonexistent-hw/x")) {
            _ = try openForWriting("/nonexistent-hw/x")
        }
    }
}

@Suite struct ResolveExecutableTests {
    @Test func searchesPath() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        for d in ["a", "b", "c"] { try FileManager.default.createDirectory(atPath: dir.file(d), withIntermediateDirectories: false) }
        try dir.write("a/tool", "#!/bin/sh\n", mode: 0o644)
        try dir.write("b/tool", "#!/bin/sh\n", mode: 0o755)
        try FileManager.default.createDirectory(atPath: dir.file("c/tool"), withIntermediateDirectories: false)

        #expect(resolveExecutable("tool", searchPath: "\(dir.file("a")):\(dir.file("b"))") == .found(dir.file("b/tool")),
                "a non-executable match earlier in PATH is skipped, like execvp")
        #expect(resolveExecutable("tool", searchPath: dir.file("a")) == .notExecutable(dir.file("a/tool")), "126")
        #expect(resolveExecutable("tool", searchPath: dir.file("c")) == .notExecutable(dir.file("c/tool")), "a directory is not runnable")
        #expect(resolveExecutable("missing", searchPath: "\(dir.file("a")):\(dir.file("b"))") == .notFound, "127")
        #expect(resolveExecutable("sh", searchPath: "/nonexistent-hw:/bin") == .found("/bin/sh"))
        #expect(resolveExecutable("sh", searchPath: nil) != .notFound, "the default search path")
    }

    @Test func pathsWithSlashAreNotSearched() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("plain", "data", mode: 0o644)
        #expect(resolveExecutable("/bin/sh", searchPath: "/nonexistent-hw") == .found("/bin/sh"))
        #expect(resolveExecutable(dir.file("plain"), searchPath: "/bin") == .notExecutable(dir.file("plain")))
        #expect(resolveExecutable(dir.file("missing"), searchPath: "/bin") == .notFound)
        #expect(resolveExecutable(dir.path, searchPath: "/bin") == .notExecutable(dir.path))
    }
}

@Suite struct FileDescriptorTests {
    @Test func duplicateIsCloexecAndHigh() throws {
        let fd = try openForWriting("/dev/null")
        let dup = try fd.duplicate(atLeast: 20)
        #expect(dup.raw >= 20)
        #expect(fcntl(dup.raw, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(fd.raw, F_GETFD) & FD_CLOEXEC != 0, "openForWriting is CLOEXEC")
    }

    @Test func pipeRoundTrip() throws {
        let (r, w) = try makePipe(nonBlocking: true)
        let reader = FileDescriptor(adopting: r)
        let writer = FileDescriptor(adopting: w)
        #expect(fcntl(r, F_GETFD) & FD_CLOEXEC != 0 && fcntl(w, F_GETFD) & FD_CLOEXEC != 0)
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(try buf.withUnsafeMutableBytes { try reader.read(into: $0) } == nil, "EAGAIN is nil")
        #expect(try writer.write("hello") == 5)
        #expect(try buf.withUnsafeMutableBytes { try reader.read(into: $0) } == 5)
        #expect(String(decoding: buf[..<5], as: UTF8.self) == "hello")
    }

    @Test func timerFires() throws {
        var timer = try TimerFD()
        let start = monotonicNanoseconds()
        try timer.arm(at: start + 50_000_000)
        #expect(timer.armedAt == start + 50_000_000)
        let ready = try waitReadable([timer.fd.raw], timeoutMilliseconds: 5000)
        #expect(ready == [0])
        #expect(monotonicNanoseconds() - start >= 50_000_000)
        timer.acknowledge()
        #expect(timer.armedAt == nil)
        #expect(try waitReadable([timer.fd.raw], timeoutMilliseconds: 0) == [], "one-shot")
        try timer.arm(at: nil)
    }
}

@Suite struct UnixSocketTests {
    @Test func pathLength() {
        #expect(UnixSocket.maxPathBytes == SocketPath.maxBytes, "Common's rule matches the kernel header")
        let ok = "/tmp/" + String(repeating: "a", count: 102)
        let long = ok + "b"
        #expect(SocketPath.problem(ok) == nil)
        #expect(SocketPath.problem(long) == "the socket path is 108 bytes, longer than the 107 bytes sun_path allows: \(long)")
        #expect(SocketPath.problem("") == "the socket path is empty")
        #expect(throws: SyscallError("bind", errno: ENAMETOOLONG, context: long)) {
            _ = try UnixSocket.listen(path: long, backlog: 1)
        }
    }

    @Test func refusesLiveListenerAndReplacesStaleOne() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("s.sock")
        let live = try UnixSocket.listen(path: path, backlog: 8, mode: 0o600)
        var st = stat()
        #expect(lstat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(UnixSocket.hasLiveListener(path))
        let inode = UnixSocket.inode(atPath: path)
        #expect(inode != nil)
        #expect(throws: SyscallError("bind", errno: EADDRINUSE, context: path)) {
            _ = try UnixSocket.listen(path: path, backlog: 8)
        }
        #expect(UnixSocket.inode(atPath: path) == inode, "the live listener's path is untouched")
        #expect(UnixSocket.hasLiveListener(path))

        _ = consume live   // closed: the file stays behind, nobody accepts
        #expect(UnixSocket.inode(atPath: path) == inode)
        #expect(!UnixSocket.hasLiveListener(path))
        let fresh = try UnixSocket.listen(path: path, backlog: 8)
        // (The inode number may be reused for the new file, so accepting is the proof.)
        #expect(UnixSocket.hasLiveListener(path), "the stale socket was replaced")
        _ = fresh
    }

    @Test func leavesNonSocketsAlone() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("file", "keep me")
        #expect(throws: SyscallError("bind", errno: EEXIST, context: dir.file("file"))) {
            _ = try UnixSocket.listen(path: dir.file("file"), backlog: 1)
        }
        #expect(try String(contentsOfFile: dir.file("file"), encoding: .utf8) == "keep me")
        #expect(UnixSocket.inode(atPath: dir.file("file")) == nil, "not a socket")
        #expect(UnixSocket.inode(atPath: dir.file("missing")) == nil)
    }

    @Test func abstractNamespace() throws {
        let name = "@hw-test/\(getpid())/\(monotonicNanoseconds())"
        let l = try UnixSocket.listen(path: name, backlog: 4)
        #expect(UnixSocket.hasLiveListener(name))
        _ = l
        let d = try UnixSocket.datagram(boundTo: name + "/dgram")
        let sender = try UnixSocket.datagram()
        try UnixSocket.send(datagram: "READY=1", to: name + "/dgram", from: sender.raw)
        var buf = [UInt8](repeating: 0, count: 64)
        let n = buf.withUnsafeMutableBytes { recv(d.raw, $0.baseAddress, $0.count, 0) }
        #expect(String(decoding: buf[..<max(n, 0)], as: UTF8.self) == "READY=1")
    }

    @Test func listenQueueCountsUnacceptedConnections() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("q.sock")
        let listener = try UnixSocket.listen(path: path, backlog: 16)
        let inode = try UnixSocket.inode(of: listener.raw)
        #expect(try UnixSocket.listenQueue(inode: inode) == (0, 16))
        let c1 = try UnixSocket.connect(path: path)
        let c2 = try UnixSocket.connect(path: path)
        let c3 = try UnixSocket.connect(path: path)
        let q = try UnixSocket.listenQueue(inode: inode)
        #expect(q.queued == 3)
        #expect(q.backlog == 16)
        let accepted = try UnixSocket.accept(listener.raw)?.release()
        #expect(accepted != nil)
        if let accepted { close(accepted) }
        #expect(try UnixSocket.listenQueue(inode: inode).queued == 2)
        _ = (c1.raw, c2.raw, c3.raw)
        #expect(throws: SyscallError.self) { _ = try UnixSocket.listenQueue(inode: 0) }
    }

    @Test func acceptNonBlockingWithNothingQueued() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let listener = try UnixSocket.listen(path: dir.file("a.sock"), backlog: 4)
        try listener.setNonBlocking()
        #expect(try UnixSocket.accept(listener.raw)?.release() == nil)
    }
}

@Suite struct DirectoryWatchTests {
    func next(_ w: borrowing DirectoryWatch, until wanted: DirectoryWatch.Change) throws -> [DirectoryWatch.Change] {
        var seen: [DirectoryWatch.Change] = []
        try waitUntil(5, "inotify to report \(wanted); saw \(seen)") {
            if try !waitReadable([w.fd.raw], timeoutMilliseconds: 10).isEmpty { seen += try w.changes() }
            return seen.contains(wanted)
        }
        return seen
    }

    @Test func reportsCreationAndRemoval() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let watch = try DirectoryWatch(directory: dir.path)
        #expect(try watch.changes() == [])
        try dir.write("a", "x")
        _ = try next(watch, until: .created("a"))
        unlink(dir.file("a"))
        _ = try next(watch, until: .removed("a"))

        // Removal by rename (moved away) and creation by rename (moved in) count too.
        try dir.write("b", "x")
        _ = try next(watch, until: .created("b"))
        #expect(rename(dir.file("b"), "/tmp/hw-moved-\(getpid())") == 0)
        _ = try next(watch, until: .removed("b"))
        #expect(rename("/tmp/hw-moved-\(getpid())", dir.file("c")) == 0)
        _ = try next(watch, until: .created("c"))

        // A socket file removed behind a listener's back is what the guard watches for.
        let l = try UnixSocket.listen(path: dir.file("s.sock"), backlog: 1)
        _ = try next(watch, until: .created("s.sock"))
        unlink(dir.file("s.sock"))
        _ = try next(watch, until: .removed("s.sock"))
        _ = l
    }

    @Test func missingDirectoryIsAnError() {
        #expect(throws: SyscallError("inotify_add_watch", errno: ENOENT, context: "/nonexistent-hw-dir")) {
            _ = try DirectoryWatch(directory: "/nonexistent-hw-dir")
        }
    }
}
