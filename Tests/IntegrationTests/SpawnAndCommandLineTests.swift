import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// Items 1, 5, 12 and 13: what a generation inherits, --listen, bad command lines, idle cost.
    @Suite(.serialized) struct SpawnAndCommandLine {
        @Test func childHasItsOwnGroupCleanSignalsAndOnlyStdio() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let hw = try Hupwatch(["--ready", "delay:0.05", "--", "/bin/sleep", "1000"], dir: dir, strayFD: 9)
            defer { hw.kill() }
            let child = try hw.waitServing(1)
            #expect(fdTarget(hw.pid, 9) == "/dev/null", "hupwatch inherited a descriptor without CLOEXEC")
            // The loader opens and closes libraries right after exec: wait for the settled state.
            try waitUntil(5, "only fds 0-2 in the child, it has \(openFDs(child) ?? [])") { openFDs(child) == [0, 1, 2] }
            let stat = try #require(statFields(child))
            #expect(stat[1] == String(hw.pid), "hupwatch is the parent")
            #expect(stat[2] == String(child), "the child leads its own process group")
            #expect(statFields(hw.pid)?[2] != String(child))
            #expect(statusField(child, "SigBlk") == "0000000000000000")
            #expect(statusField(child, "SigIgn") == "0000000000000000")
            // hupwatch itself blocks its signals (signalfd) and ignores SIGPIPE: none of that is inherited.
            #expect(statusField(hw.pid, "SigBlk") != "0000000000000000")
            #expect(statusField(hw.pid, "SigIgn") != "0000000000000000")
            let env = environment(of: child)
            #expect(env["HUPWATCH_GENERATION"] == "1")
            #expect(env["NOTIFY_SOCKET"]?.hasPrefix("/") == true && env["NOTIFY_SOCKET"]?.contains("/hupwatch.") == true
                    && env["NOTIFY_SOCKET"]?.contains("/g1-") == true, "a private path socket, not an abstract one anyone can reach")
            #expect(env["LISTEN_FDS"] == nil && env["LISTEN_PID"] == nil && env["LISTEN_FDNAMES"] == nil)
            #expect(env["PATH"] != nil, "the rest of the environment is passed on")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 143, "sleep dies of the forwarded SIGTERM: 128 + 15")
        }

        @Test func listenHandsTheListenerAsFd3ToEveryGeneration() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            let hw = try Hupwatch(["--listen", l, "--socket-mode", "0600", "--ready", "delay:0.05", "--", "/bin/sleep", "1000"], dir: dir)
            defer { hw.kill() }
            let c1 = try hw.waitServing(1)
            try waitUntil(5, "fds 0-3 in the child, it has \(openFDs(c1) ?? [])") { openFDs(c1) == [0, 1, 2, 3] }
            let inode = try #require(boundSocketInode(l), "/proc/net/unix lists the listener at \(l)")
            #expect(fdTarget(c1, 3) == "socket:[\(inode)]", "fd 3 is the listener bound at the path")
            #expect((openFDs(hw.pid) ?? []).contains { fdTarget(hw.pid, $0) == "socket:[\(inode)]" }, "hupwatch keeps it open")
            var st = stat()
            #expect(lstat(l, &st) == 0 && st.st_mode & 0o7777 == 0o600, "--socket-mode")
            let pathInode = st.st_ino
            let env1 = environment(of: c1)
            #expect(env1["LISTEN_FDS"] == "1")
            #expect(env1["LISTEN_PID"] == String(c1))
            #expect(env1["LISTEN_FDNAMES"] == "hupwatch")

            hw.signal(SIGHUP)
            let c2 = try hw.waitServing(2)
            #expect(c2 != c1)
            try waitUntil(5, "fds 0-3 in generation 2, it has \(openFDs(c2) ?? [])") { openFDs(c2) == [0, 1, 2, 3] }
            #expect(fdTarget(c2, 3) == "socket:[\(inode)]", "the same listener survives the reload")
            #expect(environment(of: c2)["LISTEN_PID"] == String(c2))
            #expect(boundSocketInode(l) == inode)
            #expect(lstat(l, &st) == 0 && st.st_ino == pathInode, "the path was never rebound")

            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 143)
            #expect(!dir.exists("l.sock"), "hupwatch unlinks its --listen path at exit")
        }

        @Test func listenServesAndSurvivesReloadsWithTestChild() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            let hw = try Hupwatch(["--listen", l, "--ready", "notify", "--", try binary("TestChild"), "--notify"], dir: dir)
            defer { hw.kill() }
            var pid = try hw.waitServing(1)
            #expect(try answeringPid(l) == pid)
            for n in 2...3 {
                hw.signal(SIGHUP)
                let next = try hw.waitServing(n)
                #expect(next != pid)
                #expect(try answeringPid(l) == next)
                #expect(environment(of: next)["LISTEN_PID"] == String(next))
                pid = next
            }
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(!dir.exists("l.sock"))
        }

        @Test func listenRefusesAPathALiveListenerServes() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            let theirs = try UnixSocket.listen(path: l, backlog: 4)
            let inode = UnixSocket.inode(atPath: l)
            let r = try runHupwatch(["--listen", l, "--", try binary("TestChild")], dir: dir)
            #expect(r.code == 3)
            #expect(r.stderr == "hupwatch: --listen \(l): a live listener already serves this address; refusing to steal it\n")
            #expect(UnixSocket.inode(atPath: l) == inode, "the path is untouched")
            #expect(UnixSocket.hasLiveListener(l))
            _ = theirs.raw
        }

        @Test func listenReplacesAStaleSocketFile() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            do { _ = try UnixSocket.listen(path: l, backlog: 4) }   // closed again: a stale file is left
            #expect(UnixSocket.inode(atPath: l) != nil && !UnixSocket.hasLiveListener(l))
            let hw = try Hupwatch(["--listen", l, "--", try binary("TestChild"), "--notify"], dir: dir)
            defer { hw.kill() }
            let pid = try hw.waitServing(1)
            #expect(try answeringPid(l) == pid)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func staleSocketFileFromAnEarlierRunDoesNotHideTheNewListener() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            // A server that died without unlinking its path: the file stays, nobody holds its inode.
            do { _ = try UnixSocket.listen(path: s, backlog: 4) }
            #expect(UnixSocket.inode(atPath: s) != nil && !UnixSocket.hasLiveListener(s))
            let hw = try Hupwatch(["--ready-timeout", "5", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            // Readiness needs a new listener at the path; the filesystem must not hand the old inode number
            // to the new bind while hupwatch compares them.
            let pid = try hw.waitServing(1, timeout: 4)
            #expect(try answeringPid(s) == pid)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        struct BadInput: CustomTestStringConvertible, Sendable {
            let name: String
            let args: [String]
            let code: Int32
            let message: String
            var testDescription: String { name }
        }

        static let badInputs: [BadInput] = {
            let tc = binDirectory + "/TestChild"
            let long = "/tmp/" + String(repeating: "s", count: 103)
            return [
                BadInput(name: "unknown flag", args: ["--bogus", "--", "/bin/true"], code: 2, message: "unknown option --bogus"),
                BadInput(name: "no command", args: [], code: 2, message: "no command given"),
                BadInput(name: "no command after --", args: ["-v", "--"], code: 2, message: "no command given"),
                BadInput(name: "command not found", args: ["--", "hw-no-such-command-xyz"], code: 127,
                         message: "hupwatch: hw-no-such-command-xyz: command not found"),
                BadInput(name: "command not executable", args: ["--", "{DIR}/plain"], code: 126, message: "{DIR}/plain: not executable"),
                BadInput(name: "command is a directory", args: ["--", "{DIR}"], code: 126, message: "{DIR}: not executable"),
                BadInput(name: "bad interpreter", args: ["--", "{DIR}/badshebang"], code: 127,
                         message: "cannot start {DIR}/badshebang: execve({DIR}/badshebang): No such file or directory"),
                BadInput(name: "exec format error", args: ["--", "{DIR}/garbage"], code: 126,
                         message: "cannot start {DIR}/garbage: execve({DIR}/garbage): Exec format error"),
                BadInput(name: "bad --chdir", args: ["--chdir", "/nonexistent-hw", "--", "/bin/true"], code: 3,
                         message: "hupwatch: --chdir /nonexistent-hw: not a directory"),
                BadInput(name: "socket path too long", args: ["--listen", long, "--", "/bin/true"], code: 2,
                         message: "--listen: the socket path is 108 bytes, longer than the 107 bytes sun_path allows"),
                BadInput(name: "missing socket folder (--listen)", args: ["--listen", "/nonexistent-hw/l.sock", "--", "/bin/true"],
                         code: 3, message: "hupwatch: socket folder /nonexistent-hw does not exist (for /nonexistent-hw/l.sock)"),
                BadInput(name: "missing socket folder (detected)", args: ["--", tc, "--socket", "/nonexistent-hw/s.sock"],
                         code: 3, message: "hupwatch: socket folder /nonexistent-hw does not exist"),
                BadInput(name: "bad signal name", args: ["--reload-signal", "SIGBOGUS", "--", "/bin/true"], code: 2,
                         message: "--reload-signal: 'SIGBOGUS' is not a signal"),
                BadInput(name: "bad graceful timeout", args: ["--graceful-timeout", "soon", "--", "/bin/true"], code: 2,
                         message: "--graceful-timeout: 'soon' is not a duration"),
                BadInput(name: "zero ready timeout", args: ["--ready-timeout=0", "--", "/bin/true"], code: 2,
                         message: "--ready-timeout must be above 0"),
                BadInput(name: "bad warm-up", args: ["-w", "-1", "--", "/bin/true"], code: 2, message: "-w: '-1' is not a duration"),
                BadInput(name: "bad delay", args: ["--ready", "delay:1y", "--", "/bin/true"], code: 2,
                         message: "--ready delay:SECONDS: '1y' is not a duration"),
                BadInput(name: "probe with --listen", args: ["--listen", "/tmp/x.sock", "--ready", "socket:/tmp/x.sock", "--", "/bin/true"],
                         code: 2, message: "cannot be used with --listen"),
                BadInput(name: "unwritable pid file", args: ["--pid-file", "/nonexistent-hw/hw.pid", "--", "/bin/true"], code: 3,
                         message: "hupwatch: --pid-file /nonexistent-hw/hw.pid: folder /nonexistent-hw does not exist"),
                BadInput(name: "status file in a missing folder", args: ["--status-file", "/nonexistent-hw/st.json", "--", "/bin/true"], code: 3,
                         message: "hupwatch: --status-file /nonexistent-hw/st.json: folder /nonexistent-hw does not exist"),
                BadInput(name: "abstract socket to probe", args: ["--ready", "socket:@abc", "--", "/bin/true"], code: 2,
                         message: "is an abstract socket name"),
                BadInput(name: "duration too large", args: ["--ready-timeout", "1000000001", "--", "/bin/true"], code: 2,
                         message: "is too large: the maximum is 1000000000 seconds"),
                BadInput(name: "a second listen on the same address", args: ["--listen", ":8000", "--listen", ":8000", "--", "/bin/true"], code: 2,
                         message: "is given twice"),
                BadInput(name: "listen on a bad port", args: ["--listen", "127.0.0.1:99999", "--", "/bin/true"], code: 2,
                         message: "is not a port"),
            ]
        }()

        @Test(arguments: badInputs)
        func badInputPrintsOneLineAndExits(_ input: BadInput) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("plain", "#!/bin/sh\nexit 0\n", mode: 0o644)
            try dir.write("badshebang", "#!/nonexistent-hw/sh\nexit 0\n", mode: 0o755)
            try dir.write("garbage", "\u{7f}ELF but not really", mode: 0o755)
            let args = input.args.map { $0.replacingOccurrences(of: "{DIR}", with: dir.path) }
            let r = try runHupwatch(args, dir: dir)
            #expect(r.code == input.code, "stderr: \(r.stderr)")
            #expect(r.stderr.hasSuffix("\n") && r.stderr.filter { $0 == "\n" }.count == 1, "exactly one line: \(r.stderr.debugDescription)")
            #expect(r.stderr.contains(input.message.replacingOccurrences(of: "{DIR}", with: dir.path)), "stderr: \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }

        @Test func helpAndVersion() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let help = try runHupwatch(["--help"], dir: dir)
            #expect(help.code == 0)
            #expect(help.stdout.hasPrefix("usage: hupwatch [OPTIONS] -- COMMAND [ARG...]"))
            for flag in ["--ready MODE", "--ready-timeout", "-w, --warmup-time", "--reload-signal", "--graceful-timeout", "--listen [NAME=]ADDRESS",
                         "--socket-mode", "--socket PATH", "--no-guard", "--no-rewrite", "--notify-fd", "hupwatch reload", "hupwatch status", "hupwatch stop", "--on-exit", "-k, --kill-at-exit", "--chdir", "--pid-file",
                         "--status-file", "-q, --quiet", "-v, --verbose", "--version"] {
                #expect(help.stdout.contains(flag), "--help documents \(flag)")
            }
            #expect(help.stderr.isEmpty)
            let version = try runHupwatch(["--version"], dir: dir)
            #expect(version.code == 0)
            #expect(version.stdout.hasPrefix("hupwatch "))
        }

        @Test func idleHupwatchUsesNoCPU() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            try hw.waitServing(1)
            try waitUntil(5, "hupwatch to block in poll") { statFields(hw.pid)?.first == "S" }
            let before = try #require(cpuTicks(hw.pid))
            // The measurement itself: one second of doing nothing must cost hupwatch no clock tick.
            usleep(1_000_000)
            let after = try #require(cpuTicks(hw.pid))
            #expect(after == before, "hupwatch used \(after - before) ticks of CPU while idle")
            #expect(hw.isRunning)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }
    }
}
