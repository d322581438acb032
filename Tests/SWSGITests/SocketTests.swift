import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct Sockets {
        /// A newer instance that took over the path keeps it when the older one exits. (Only hupwatch's next
        /// generation may take a live path over: it says so in HUPWATCH_GENERATION.)
        @Test func vacuumRemovesOnlyItsOwnInode() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let a = try Server(["--processes", "1", "--app", "hello"], dir: dir, environment: ["HUPWATCH_GENERATION": "1"], name: "a")
            defer { a.stop() }
            let path = a.socket!
            let inodeA = fileInode(path)
            #expect(try a.get("/").text == "Hello, World!\n")

            let b = try Server(["--processes", "1", "--app", "echo"], dir: dir, environment: ["HUPWATCH_GENERATION": "2"], name: "b")
            defer { b.stop() }
            // B bound a new inode at the same path; new clients reach B.
            #expect(fileInode(path) != inodeA)
            #expect(try b.get("/who").text == "GET /who\n")

            #expect(a.stop() == 0, "A's log:\n\(a.log)")
            #expect(fileExists(path), "A must not remove the path B now owns")
            #expect(try b.get("/still").text == "GET /still\n")

            #expect(b.stop() == 0)
            #expect(!fileExists(path), "B removes its own path")
        }

        @Test func pidFileIsWrittenAndRemoved() throws {
            try withServer(["--processes", "1", "--pid-file", "{dir}/swsgi.pid"]) { s throws in
                let pidFile = s.dir.file("swsgi.pid")
                #expect((try? String(contentsOfFile: pidFile, encoding: .utf8)) == "\(s.pid)\n")
                #expect(s.stop() == 0)
                #expect(!fileExists(pidFile))
            }
        }

        /// systemd socket activation: fd 3 with LISTEN_FDS=1 and LISTEN_PID = swsgi's pid.
        @Test func listenFDsInheritedListenerIsServedAndItsPathKept() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let path = dir.file("activated.sock")
            let listener = try makeListener(path)
            let s: Server
            do {
                defer { close(listener) }  // only swsgi holds it once spawned
                // $$ is the shell's pid, which exec hands to swsgi.
                s = try Server(["--processes", "2"], dir: dir, socket: nil,
                               environment: ["LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"],
                               shell: "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"", fd3: listener)
            }
            defer { s.stop() }
            #expect(s.log.contains("listening on fd 3 from LISTEN_FDS (web)"), "log:\n\(s.log)")
            #expect(processTitle(s.pid) == "swsgi master")
            let inode = fileInode(path)
            for _ in 0..<3 {
                let c = try Client(path: path)
                try c.send(httpGet("/"))
                #expect(try c.readResponse().text == "Hello, World!\n")
            }
            #expect(s.stop() == 0, "log:\n\(s.log)")
            #expect(fileExists(path), "swsgi did not bind the path, so it must not remove it")
            #expect(fileInode(path) == inode)
        }

        /// Several listeners, one of them port 0 (a free port the kernel picks): the socket systemd hands
        /// over on port P is the listener configured with port P, whichever comes first; port 0 matches
        /// an inherited socket only when no listener names its port.
        @Test(arguments: [true, false])
        func anInheritedSocketIsTheListenerWithItsPortBeforeAPortZeroOne(_ portZeroFirst: Bool) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let port = try freeLocalPort()
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            #expect(fd >= 0)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var sin = loopbackAddress(port: port)
            let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            #expect(bound == 0 && listen(fd, 16) == 0, "errno \(errno)")
            let listeners = [["--http-socket", "127.0.0.1:0"], ["--uwsgi-socket", "127.0.0.1:\(port)"]]
            let s: Server
            do {
                defer { close(fd) }
                s = try Server(["--processes", "1"] + (portZeroFirst ? listeners : listeners.reversed()).flatMap { $0 }, dir: dir, socket: nil,
                               environment: ["LISTEN_FDS": "1"], shell: "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"", fd3: fd)
            }
            defer { s.stop() }
            #expect(s.log.contains("uwsgi:127.0.0.1:\(port) (fd 3 from LISTEN_FDS)"), "log:\n\(s.log)")
            #expect(s.log.contains("(port 0: chosen by the kernel)"), "log:\n\(s.log)")
            #expect(s.stop() == 0, "log:\n\(s.log)")
        }

        @Test func listenFDsForAnotherPidIsIgnored() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let listener = try makeListener(dir.file("other.sock"))
            defer { close(listener) }
            let s = try Server(["--processes", "1"], dir: dir, socket: nil,
                               environment: ["LISTEN_FDS": "1", "LISTEN_PID": "1"], fd3: listener, ready: false)
            defer { s.stop() }
            let status = s.waitExit(timeout: 10)
            #expect(status != nil && status != 0)
            #expect(s.log.contains("no listener"), "log:\n\(s.log)")
        }
    }

    @Suite struct Notify {
        @Test func readyStoppingAndReloadingAreNotified() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let notify = try NotifySocket(path: dir.file("notify"))
            let s = try Server(["--processes", "2"], dir: dir, environment: ["NOTIFY_SOCKET": notify.path], ready: false)
            defer { s.stop() }
            let ready = notify.waitFor(timeout: 10) { $0.hasPrefix("READY=1") }
            try #require(ready != nil, "no READY=1; got \(notify.messages); log:\n\(s.log)")
            // READY=1 means every worker accepts: a request succeeds right away and both workers exist.
            let workers = s.workers
            #expect(workers.count == 2 && workers.allSatisfy { processTitle($0)?.hasPrefix("swsgi worker") == true })
            #expect(try s.get("/", timeout: 2).status == 200)
            #expect(notify.messages.first { $0.hasPrefix("READY=1") }?.contains("STATUS=") == true)

            s.signal(SIGHUP)
            let reloading = notify.waitFor(timeout: 10, after: ready!) { $0.hasPrefix("RELOADING=1") }
            try #require(reloading != nil, "no RELOADING=1 after SIGHUP: \(notify.messages)")
            #expect(notify.messages[reloading!].contains("MONOTONIC_USEC="))
            let reloaded = notify.waitFor(timeout: 10, after: reloading!) { $0.hasPrefix("READY=1") }
            #expect(reloaded != nil, "no READY=1 after RELOADING=1: \(notify.messages)")
            // After the second READY=1 the new workers accept.
            #expect(try s.get("/", timeout: 2).status == 200)
            #expect(Set(s.waitWorkers(2)).isDisjoint(with: workers))

            s.signal(SIGTERM)
            #expect(notify.waitFor(timeout: 10) { $0.hasPrefix("STOPPING=1") } != nil, "got \(notify.messages)")
            #expect(s.waitExit(timeout: 10) == 0)
        }
    }
}

extension SWSGIIntegration {
    @Suite struct StartupFailures {
        /// Server.swift: a failure after the bind (here the --stats folder is missing) removes the socket
        /// and the pid file it already wrote.
        @Test func failureAfterBindLeavesNoSocketOrPidFile() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let (status, output) = try runToExit(["--processes", "1", "--stats", "{dir}/missing/stats", "--pid-file", "{dir}/pid"],
                                                 socket: "s", in: dir)
            #expect(status == 1)
            #expect(output.contains("missing/stats"), "stderr: \(output)")
            #expect(!fileExists(dir.file("s")), "no dead socket left at the path")
            #expect(!fileExists(dir.file("pid")), "no stale pid file")
        }

        /// Master.swift: the stats socket is created in `Master.init`, after `Listener.open` has already renamed
        /// the new listener over --socket. A second instance whose --stats path is taken by a live instance
        /// fails, but only after taking the live instance's socket path: clients then get ENOENT/ECONNREFUSED.
        @Test func failedSecondInstanceDoesNotStealTheSocket() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let a = try Server(["--processes", "1", "--stats", "{dir}/stats"], dir: dir, name: "a")
            defer { a.stop() }
            let b = try Server(["--processes", "1", "--stats", "{dir}/stats"], dir: dir, ready: false, name: "b")
            defer { b.stop() }
            let status = b.waitExit(timeout: 10)
            #expect(status == 1, "B must fail: the stats path is live; log:\n\(b.log)")
            #expect(b.log.contains("stats"))
            #expect(fileExists(a.socket!), "A's socket path must survive B's failed start")
            let r = try a.get("/", timeout: 3)
            #expect(r.status == 200)
        }
    }
}

extension SWSGIIntegration.Lifecycle {
    /// Master.swift `becomeWorker` unblocks SIGHUP/SIGINT/SIGQUIT and never had SIGUSR1 blocked, so a worker
    /// signalled between fork and `Worker.init` (which creates its signalfd) dies of the default action
    /// instead of retiring: "retired: killed by SIGUSR1" in the log.
    @Test func workersSignalledWhileStartingRetireCleanly() throws {
        var dirty: [String] = []
        for _ in 0..<8 {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "4"], dir: dir, ready: false)
            defer { s.stop() }
            // The master logs this line after blocking its signals and just before forking: poll tightly.
            let deadline = monotonicSeconds() + 10
            while !s.log.contains("listening on") && monotonicSeconds() < deadline && s.isRunning { usleep(500) }
            s.signal(SIGTERM)
            #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
            dirty += s.logLines.filter { $0.contains("retired: killed by") }
        }
        #expect(dirty.isEmpty, "\(dirty)")
    }
}
