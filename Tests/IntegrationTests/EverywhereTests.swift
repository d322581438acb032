import Foundation
import Glibc
import Posix
import Testing

/// Connects once to a Unix path and says why not, without sending anything: what nginx meets first.
func connectProblem(_ path: String) -> String? {
    do {
        let fd = try UnixSocket.connect(path: path, nonBlocking: true)
        _ = fd
        return nil
    } catch let e as SyscallError where e.errno == EAGAIN {
        return nil  // a full backlog: a live listener, busy
    } catch {
        return "\(error)"
    }
}

/// Connects to the path in a tight loop on a thread of its own until stopped; counts the refusals.
final class PathPoller: @unchecked Sendable {
    private let lock = NSLock()
    private var stopRequested = false
    private var done = false
    private(set) var attempts = 0
    private(set) var problems: [String] = []

    init(_ path: String) {
        Thread { [self] in
            while !lock.withLock({ stopRequested }) {
                let p = connectProblem(path)
                lock.withLock {
                    attempts += 1
                    if let p { problems.append(p) }
                }
            }
            lock.withLock { done = true }
        }.start()
    }

    func stop() throws -> (attempts: Int, problems: [String]) {
        lock.withLock { stopRequested = true }
        try waitUntil(10, "the poller to stop") { lock.withLock { done } }
        return lock.withLock { (attempts, problems) }
    }
}

/// A script that passes its own arguments on to TestChild, plus what `DIR/mode` says at every spawn: hupwatch
/// sees `--socket PATH` in its command line (and rewrites it), while the test changes the next release.
func passThroughModeScript(_ dir: TempDir) throws -> String {
    let tc = try binary("TestChild")
    try dir.write("pass.sh", "#!/bin/sh\nexec \(tc) \"$@\" $(cat \(dir.file("mode")) 2>/dev/null)\n", mode: 0o755)
    return dir.file("pass.sh")
}

extension HupwatchIntegration {
    /// Issue 12: rewrite mode, TCP and several listeners, reload verbs, s6 readiness.
    @Suite(.serialized) struct Everywhere {
        /// A naive rebind (unlink, bind, listen) that also removes its path at exit, like gunicorn: in rewrite
        /// mode each generation does it on its own private path, so the public path never goes missing.
        @Test func publicPathIsNeverMissingAcrossTwentyReloadsOfANaiveServer() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            let hw = try Hupwatch(["--", try binary("TestChild"), "--socket", s, "--unlink-bind", "--unlink-at-exit"], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            #expect(hw.lines(containing: "protection: rewrite mode on \(s)").count == 1)
            let poller = PathPoller(s)
            for n in 2...21 {
                hw.signal(SIGHUP)
                let pid = try hw.waitServing(n)
                try hw.waitStatus(10, "generation \(n) alone") { $0.settled }
                #expect(try answeringPid(s) == pid)
            }
            let r = try poller.stop()
            #expect(r.attempts > 1000, "the poller kept connecting")
            #expect(r.problems.isEmpty, "ENOENT/ECONNREFUSED at the public path: \(r.problems.prefix(5))")
            // Each generation bound its own path; the old ones removed theirs, never the public one.
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            #expect(leftovers.filter { $0.hasPrefix(".app.sock.g") } == [".app.sock.g21"])
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(UnixSocket.inode(atPath: s) == nil, "the public path was ours: removed at exit")
        }

        /// Real gunicorn with `--bind unix:PATH`: it unlinks, binds, listens, and removes the path at exit.
        /// In rewrite mode nothing of that reaches the public path: 10 reloads under a connect loop and a
        /// request loop, 0 refused connections and 0 failed requests.
        @Test func gunicornRebindingItsPathLosesNothingInRewriteMode() async throws {
            let gunicorn = try await pythonTool("gunicorn")
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            let apps = packageRoot + "/supervisor-examples/apps"
            let hw = try Hupwatch(["--", gunicorn, "--bind", "unix:\(s)", "--workers", "1", "--no-control-socket",
                                   "--chdir", apps, "hello:application"], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1, timeout: 30)
            #expect(hw.lines(containing: "protection: rewrite mode on \(s)").count == 1)
            let poller = PathPoller(s)
            let client = LoadClient(path: s)
            for n in 2...11 {
                client.startingReload(n - 1)
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n, timeout: 30)
                try hw.waitStatus(30, "generation \(n) alone") { $0.settled }
            }
            let paths = try poller.stop()
            try await client.stop()
            let load = client.snapshot()
            #expect(paths.problems.isEmpty, "the public path refused or was missing: \(paths.problems.prefix(5))")
            #expect(load.failures.isEmpty, "failed requests: \(load.failures.prefix(5))")
            #expect(load.succeeded > 100)
            print("[Everywhere] gunicorn rewrite mode: \(load.succeeded) requests, \(load.failures.count) failed, \(paths.attempts) connects, \(paths.problems.count) refused, 10 reloads")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit(30) == 0)
        }

        @Test func rollbackLeavesThePublicPathWhereItWas() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            try dir.write("mode", "")
            let hw = try Hupwatch(["--ready-timeout", "1", "--", try passThroughModeScript(dir), "--socket", s], dir: dir)
            defer { hw.kill() }
            let old = try hw.waitServing(1)
            #expect(hw.lines(containing: "protection: rewrite mode on \(s)").count == 1)
            let inode = UnixSocket.inode(atPath: s)
            for (n, mode) in ["--fail-at-start", "--never-ready"].enumerated() {
                try dir.write("mode", mode)
                hw.signal(SIGHUP)
                _ = try hw.waitStatus(10, "reload \(n + 1) to fail") { $0.last_reload?.generation == n + 2 && $0.last_reload?.outcome == "failed" && $0.settled }
                #expect(UnixSocket.inode(atPath: s) == inode)
                #expect(try answeringPid(s) == old)
            }
        }

        @Test func aLiveListenerOrAFileAtThePublicPathIsRefused() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            let theirs = try UnixSocket.listen(path: s, backlog: 4)
            let r = try runHupwatch(["--", try binary("TestChild"), "--socket", s], dir: dir)
            #expect(r.code == 3)
            #expect(r.stderr.contains("a live listener already serves this path"))
            _ = theirs
            let f = dir.file("file.sock")
            try dir.write("file.sock", "precious")
            let r2 = try runHupwatch(["--", try binary("TestChild"), "--socket", f], dir: dir)
            #expect(r2.code == 3)
            #expect(r2.stderr.contains("exists and is not a socket"))
            #expect(dir.read("file.sock") == "precious")
        }

        @Test func tcpListenerServesSwsgiAcrossReloads() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let port = try freeLocalPort()
            let hw = try Hupwatch(["--listen", "127.0.0.1:\(port)", "--", try binary("swsgi"), "--processes", "1"], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            #expect(tcpGet(port: port) == .success(200))
            for n in 2...4 {
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n)
                #expect(tcpGet(port: port) == .success(200))
            }
            // The port is hupwatch's: a second one cannot take it over.
            let r = try runHupwatch(["--listen", ":\(port)", "--", try binary("TestChild")], dir: dir)
            #expect(r.code == 3)
            #expect(r.stderr.contains("a live listener already serves this address; refusing to steal it"))
        }

        @Test func severalNamedListenersReachTheChildAsFdsThreeAndUp() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let port = try freeLocalPort()
            let script = dir.file("child.sh")
            try dir.write("child.sh", """
                #!/bin/sh
                echo "$LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES" > \(dir.file("env"))
                readlink /proc/$$/fd/3 /proc/$$/fd/4 > \(dir.file("fds"))
                exec sleep 600
                """, executable: true)
            let hw = try Hupwatch(["--ready", "delay:0.1", "--listen", "web=127.0.0.1:\(port)", "--listen", "admin=\(dir.file("admin.sock"))",
                                   "--", script], dir: dir)
            defer { hw.kill() }
            let pid = try hw.waitServing(1)
            try waitUntil(5, "the child to report") { dir.read("fds").split(separator: "\n").count == 2 }
            #expect(dir.read("env") == "\(pid) 2 web:admin\n")
            #expect(dir.read("fds").split(separator: "\n").allSatisfy { $0.hasPrefix("socket:[") })
            #expect(tcpGet(port: port, timeoutSeconds: 1) != .success(200), "sleep never answers; the port is bound")
            #expect(UnixSocket.hasLiveListener(dir.file("admin.sock")))
        }

        @Test func reloadWaitAnswersWithTheOutcomeOfItsOwnReload() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            try dir.write("mode", "")
            let hw = try Hupwatch(["--ready-timeout", "1", "--pid-file", dir.file("hw.pid"), "--", try passThroughModeScript(dir), "--socket", s], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            var r = try runHupwatch(["reload", "--wait", "--pid-file", dir.file("hw.pid")], dir: dir)
            #expect(r.code == 0, "a good release: \(r.stderr)")
            #expect(r.stdout.hasPrefix("reload 1 succeeded"))
            try dir.write("mode", "--fail-at-start")
            r = try runHupwatch(["reload", "--wait", "--status-file", hw.statusPath], dir: dir)
            #expect(r.code == 1)
            #expect(r.stderr.contains("reload 2 rolled back: exited before it was ready"))
            try dir.write("mode", "--never-ready")
            r = try runHupwatch(["reload", "--wait", String(hw.pid)], dir: dir)
            #expect(r.code == 1)
            #expect(r.stderr.contains("reload 3 rolled back: was not ready within 1s"))
            r = try runHupwatch(["reload", "--wait", "--timeout", "0.3", String(hw.pid)], dir: dir)
            #expect(r.code == 124, "gave up before the 1 s ready timeout: \(r.stderr)")
            _ = try hw.waitStatus(10, "reload 4 to fail") { $0.last_reload?.generation == 5 && $0.settled }
            // status: a ready generation serves.
            r = try runHupwatch(["status", String(hw.pid)], dir: dir)
            #expect(r.code == 0)
            #expect(r.stdout.contains("generation 2 serving"), "reload 1 made generation 2; the rest rolled back")
            r = try runHupwatch(["status", "--json", "--pid-file", dir.file("hw.pid")], dir: dir)
            #expect(r.stdout.hasPrefix("{\"pid\":\(hw.pid),"))
            #expect(r.stdout.contains("\"reloads\":[{\"id\":1,"))
            // stop --wait returns once hupwatch is gone.
            r = try runHupwatch(["stop", "--wait", String(hw.pid)], dir: dir)
            #expect(r.code == 0)
            #expect(try hw.waitExit() == 0)
            r = try runHupwatch(["status", String(hw.pid)], dir: dir)
            #expect(r.code == 3, "nobody there")
        }

        @Test func overlappingCallersEachGetTheirOwnOutcome() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("app.sock")
            try dir.write("mode", "--ready-delay 0.5")
            let hw = try Hupwatch(["--", try passThroughModeScript(dir), "--socket", s], dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            let first = try Child([try binary("hupwatch"), "reload", "--wait", String(hw.pid)], output: dir.file("first.out"), environment: [:])
            defer { _ = first.stop() }
            // Wait until generation 2 runs its release (read from `mode` by the script at exec time).
            try waitUntil(5, "reload 1's generation to run its release") {
                guard let g2 = hw.status()?.generations.first(where: { $0.generation == 2 }) else { return false }
                return commandLine(of: g2.pid).contains("--ready-delay")
            }
            // The second request comes while reload 1 is under way: it joins the reload queued after it,
            // which fails; the first caller still learns that its own reload succeeded.
            try dir.write("mode", "--fail-at-start")
            let second = try runHupwatch(["reload", "--wait", String(hw.pid)], dir: dir)
            #expect(first.waitExit(timeout: 10) == 0)
            #expect(dir.read("first.out").hasPrefix("reload 1 succeeded"))
            #expect(second.code == 1)
            #expect(second.stderr.contains("reload 2 rolled back"))
        }

        @Test func statusIsNotOkWhileNoReadyGenerationServes() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let hw = try Hupwatch(["--ready", "notify", "--", try binary("TestChild"), "--socket", dir.file("a.sock")], dir: dir)
            defer { hw.kill() }
            try waitUntil(5, "generation 1 to start") { hw.status()?.generations.count == 1 }
            let r = try runHupwatch(["status", String(hw.pid)], dir: dir)
            #expect(r.code == 1)
            #expect(r.stdout.contains("no ready generation serves"))
        }

        @Test func controlVerbsRefuseBadArguments() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            for (args, message) in [(["reload"], "name the hupwatch"), (["reload", "--timeout", "1", "1234"], "--timeout goes with --wait"),
                                    (["status", "--wait", "1234"], "unknown argument --wait"), (["stop", "12345", "23456"], "name one hupwatch"),
                                    (["reload", "--pid-file", dir.file("none")], "cannot read a pid")] {
                let r = try runHupwatch(args, dir: dir)
                #expect(r.code != 0)
                #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
                #expect(r.stderr.filter { $0 == "\n" }.count == 1)
            }
        }

        /// s6's notification-fd: one newline once the first generation is ready.
        @Test func s6NotificationFdGetsANewlineWhenReady() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            defer { close(fds[0]) }
            let hw = try Hupwatch(["--notify-fd", "3", "--", try binary("TestChild"), "--socket", dir.file("a.sock")], dir: dir, fd3: fds[1])
            close(fds[1])
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            var byte: UInt8 = 0
            #expect(waitReadable(fds[0], timeoutMilliseconds: 5000))
            #expect(read(fds[0], &byte, 1) == 1 && byte == UInt8(ascii: "\n"))
            // Written once, then closed: EOF.
            #expect(read(fds[0], &byte, 1) == 0)
        }
    }
}
