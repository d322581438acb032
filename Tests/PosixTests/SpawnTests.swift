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
        #expect(ExitStatus(waitStatus: status) == .exited(0))
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first == "\(pid) \(pid) 1", "LISTEN_PID is the child's own pid, our stale values are replaced")
        #expect(lines.last.map(String.init) == "socket:[\(try UnixSocket.inode(of: listener.raw))]")
    }

    @Test func childGetsCleanStateAndNoLeakedFDs() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let listener = try UnixSocket.listen(path: dir.file("l.sock"), backlog: 4)
        // A descriptor without CLOEXEC, as a careless library leaves behind: it must not reach the child.
        let leaky = open("/dev/null", O_RDONLY)
        #expect(leaky >= 0 && fcntl(leaky, F_GETFD) & FD_CLOEXEC == 0)
        defer { close(leaky) }
        // A blocked and an ignored signal in the parent must not reach the child either.
        var usr2 = SignalSet([SIGUSR2]).raw
        var oldMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &usr2, &oldMask)
        let oldURG = signal(SIGURG, SIG_IGN)
        let pid: pid_t
        do {
            defer {
                signal(SIGURG, oldURG)
                pthread_sigmask(SIG_SETMASK, &oldMask, nil)
            }
            pid = try spawn(SpawnRequest(executablePath: "/bin/sleep", argv: ["sleep", "30"], environment: env,
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
        let childEnv = environment(of: pid)
        #expect(childEnv["LISTEN_PID"] == String(pid))
        #expect(childEnv["LISTEN_FDS"] == "1")
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
        #expect(ExitStatus(waitStatus: try reap(pid)) == .exited(7))
        let pid2 = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["sh", "-c", "kill -KILL $$"], environment: env))
        let end = ExitStatus(waitStatus: try reap(pid2))
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
