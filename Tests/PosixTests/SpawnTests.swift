import Foundation
import Glibc
import Posix
import Testing

/// Spawns real processes: serialized so fd and signal-mask checks never overlap.
@Suite(.serialized) struct SpawnTests {
    let env = environmentSnapshot()

    func kill9AndReap(_ pid: pid_t) throws {
        kill(pid, SIGKILL)
        _ = try reap(pid)
    }

    @Test func listenerOnFd3WithListenPidOfTheChild() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let listener = try UnixSocket.listen(path: dir.file("l.sock"), backlog: 4)
        let high = try listener.duplicate(atLeast: 20)
        let out = dir.file("out")
        let script = "echo \"$LISTEN_PID $$ $LISTEN_FDS\" > \(out); readlink /proc/$$/fd/3 >> \(out)"
        let pid = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["sh", "-c", script],
                                         environment: env + ["LISTEN_PID=1", "LISTEN_FDS=5"], listener: high.raw))
        let status = try reap(pid)
        #expect(ProcessEnd(waitStatus: status) == .exited(0))
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first == "\(pid) \(pid) 1", "LISTEN_PID is the child's own pid, our stale values are replaced")
        #expect(lines.last.map(String.init) == "socket:[\(try UnixSocket.inode(of: listener.raw))]")
    }

    @Test func childGetsCleanStateAndNoLeakedFDs() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let listener = try UnixSocket.listen(path: dir.file("l.sock"), backlog: 4)
        // The test process holds descriptors without CLOEXEC (Foundation's and the harness's sockets, pipes,
        // /dev/null): none may reach the child. (No leaky fd is made here: suites spawning in parallel would
        // inherit it.)
        let inheritable = (openFDs(getpid()) ?? []).filter { $0 > 3 && fcntl(Int32($0), F_GETFD) & FD_CLOEXEC == 0 }
        print("spawn test: \(inheritable.count) descriptors of the test process lack CLOEXEC")
        // A signal blocked in the parent must not stay blocked in the child. (Nor one ignored: `swift test`
        // can start this process with glibc's internal signal 32 ignored, which glibc's sigaction cannot reset.
        // Ignoring one here would leak into processes other suites spawn meanwhile.)
        var usr2 = SignalSet([SIGUSR2]).raw
        var oldMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &usr2, &oldMask)
        let pid: pid_t
        do {
            defer { pthread_sigmask(SIG_SETMASK, &oldMask, nil) }
            pid = try spawn(SpawnRequest(executablePath: "/bin/sleep", argv: ["sleep", "30"], environment: env + ["LISTEN_FDNAMES=web"],
                                         workingDirectory: dir.path, listener: listener.raw, parentDeathSignal: SIGKILL))
        }
        defer { try? kill9AndReap(pid) }
        // The loader opens and closes libraries right after exec: wait for the settled state.
        try waitUntil(5, "the child's fds to be 0-3, are \(openFDs(pid) ?? [])") { openFDs(pid) == [0, 1, 2, 3] }
        #expect(fdTarget(pid, 3) == "socket:[\(try UnixSocket.inode(of: listener.raw))]")
        #expect(statusField(pid, "SigBlk") == "0000000000000000")
        #expect(statusField(pid, "SigIgn") == "0000000000000000")
        let stat = try #require(statFields(pid))
        #expect(stat[2] == String(pid), "its own process group")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") == dir.path)
        var childEnv: [String: String] = [:]
        try waitUntil(2, "/proc/\(pid)/environ to be readable (child state: \(statusField(pid, "State") ?? "gone"))") {
            childEnv = environment(of: pid)
            return !childEnv.isEmpty
        }
        #expect(childEnv["LISTEN_PID"] == String(pid))
        #expect(childEnv["LISTEN_FDS"] == "1")
        #expect(childEnv["LISTEN_FDNAMES"] == "web", "the caller names the listener")
    }

    @Test func withoutListenerOnlyStdio() throws {
        let pid = try spawn(SpawnRequest(executablePath: "/bin/sleep", argv: ["sleep", "30"], environment: env))
        defer { try? kill9AndReap(pid) }
        try waitUntil(5, "the child's fds to be 0-2, are \(openFDs(pid) ?? [])") { openFDs(pid) == [0, 1, 2] }
        let childEnv = environment(of: pid)
        #expect(childEnv["LISTEN_PID"] == nil && childEnv["LISTEN_FDS"] == nil)
    }

    @Test func exitStatusOfARealChild() throws {
        let pid = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["sh", "-c", "exit 7"], environment: env))
        #expect(ProcessEnd(waitStatus: try reap(pid)) == .exited(7))
        let pid2 = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["sh", "-c", "kill -KILL $$"], environment: env))
        let end = ProcessEnd(waitStatus: try reap(pid2))
        #expect(end == .signaled(SIGKILL))
        #expect(end.shellCode == 137)
    }

    @Test func missingProgramIs127() throws {
        do {
            _ = try spawn(SpawnRequest(executablePath: "/nonexistent-hw/prog", argv: ["prog"], environment: env))
            Issue.record("spawn of a missing program succeeded")
        } catch let e as SpawnError {
            #expect(e.step == "execve")
            #expect(e.errno == ENOENT)
            #expect(e.shellCode == 127)
            #expect(e.description == "execve(/nonexistent-hw/prog): No such file or directory")
        }
    }

    @Test func notExecutableIs126() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("prog", "#!/bin/sh\nexit 0\n", mode: 0o644)
        do {
            _ = try spawn(SpawnRequest(executablePath: dir.file("prog"), argv: ["prog"], environment: env))
            Issue.record("spawn of a non-executable file succeeded")
        } catch let e as SpawnError {
            #expect(e.step == "execve")
            #expect(e.errno == EACCES)
            #expect(e.shellCode == 126)
        }
    }

    @Test func badWorkingDirectoryIsReported() throws {
        do {
            _ = try spawn(SpawnRequest(executablePath: "/bin/true", argv: ["true"], environment: env,
                                       workingDirectory: "/nonexistent-hw-dir"))
            Issue.record("spawn into a missing directory succeeded")
        } catch let e as SpawnError {
            #expect(e.step == "chdir")
            #expect(e.errno == ENOENT)
            #expect(e.shellCode == 126)
            #expect(e.description == "chdir(/nonexistent-hw-dir): No such file or directory")
        }
    }
}
