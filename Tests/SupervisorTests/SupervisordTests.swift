import Foundation
import Glibc
import Testing

/// supervisord runs as the test's child in the foreground (-n) with a private config: its control
/// socket, log, pid file and the program's log all live in the test's temp folder. The program
/// section is the example file itself (supervisor-examples/supervisord/*.conf), paths substituted.
struct Supervisord {
    let dir: TempDir
    let conf: String
    let supervisorctl: String
    let daemon: Child

    static let plumbing: Set<String> = ["supervisord"]

    init(dir: TempDir, program: String, extraEnvironment: [String: String] = [:]) async throws {
        let supervisord = try await pythonTool("supervisord")
        supervisorctl = try await pythonTool("supervisorctl")
        self.dir = dir
        try dir.mkdir("log")
        try dir.write("app.conf", program)
        conf = dir.file("supervisord.conf")
        try dir.write("supervisord.conf", """
            [unix_http_server]
            file=\(dir.file("supervisor.sock"))
            chmod=0700

            [supervisord]
            logfile=\(dir.file("supervisord.log"))
            pidfile=\(dir.file("supervisord.pid"))
            childlogdir=\(dir.path)
            nodaemon=true
            user=root

            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

            [supervisorctl]
            serverurl=unix://\(dir.file("supervisor.sock"))

            [include]
            files=\(dir.file("app.conf"))

            """)
        daemon = try Child([supervisord, "-n", "-c", conf], output: dir.file("supervisord.out"),
                           environment: childEnvironment(marker: dir.path, extra: extraEnvironment))
    }

    func ctl(_ args: String...) async throws -> CommandResult {
        try await run([supervisorctl, "-c", conf] + args, environment: childEnvironment(marker: dir.path))
    }

    /// `supervisorctl pid app`: the pid supervisord supervises.
    func pid() async throws -> pid_t {
        let r = try await ctl("pid", "app")
        guard let p = pid_t(r.output.trimmingCharacters(in: .whitespacesAndNewlines)), p > 0 else {
            throw Failure("supervisorctl pid app: \(r.output)")
        }
        return p
    }

    func waitRunning() async throws {
        var last = ""
        try await waitFor("supervisord to report app RUNNING (last: \(last))", timeout: 30) {
            if !daemon.running { throw Failure("supervisord exited: \(daemon.output)") }
            last = dir.read("supervisord.log")
            return last.contains("success: app entered RUNNING state")
        }
    }

    var programLog: String { dir.read("log/app.log") }

    func shutdown() async throws {
        if daemon.running { _ = try? await ctl("shutdown") }
        _ = try await daemon.wait(timeout: 20, "supervisord")
    }
}

extension SupervisorExamples {
    @Suite struct SupervisordExample {
        @Test("supervisord: swsgi under hupwatch, 3 reloads by `supervisorctl signal HUP`, stop by `supervisorctl stop`")
        func swsgi() async throws {
            let dir = try TempDir()
            var sup: Supervisord? = nil
            do {
                let program = try example("supervisord/app.conf", try standardSubstitutions(dir))
                sup = try await Supervisord(dir: dir, program: program)
                let s = sup!
                try await s.waitRunning()
                let pid = try await s.pid()
                #expect(procEntry(pid)?.comm == "hupwatch", "supervisord should supervise hupwatch itself")
                try await waitFor("generation 1 ready", timeout: 15) { s.programLog.contains("generation 1 is ready") }

                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { s.programLog }, supervisorPid: { try await s.pid() },
                    reload: {
                        let r = try await s.ctl("signal", "HUP", "app")
                        #expect(r.status == 0 && r.output.contains("app: signalled"), "supervisorctl signal: \(r.output)")
                    })
                report("supervisord + swsgi: \(load), 3 reloads, pid \(pid) kept")

                // redirect_stderr=true: hupwatch's lines and the generations' lines in one log.
                #expect(s.programLog.contains("hupwatch[\(pid)]"))
                #expect(s.programLog.contains("swsgi master"))

                // What -k is for: supervisord SIGKILLs hupwatch (as it does when stopwaitsecs runs out).
                // The generation runs in a process group of its own, out of reach of supervisord, yet
                // it and its workers must die with hupwatch; supervisord then restarts the program.
                let master = try #require(allPids().compactMap(procEntry).first { $0.ppid == pid && $0.comm.hasPrefix("swsgi") })
                let workers = allPids().compactMap(procEntry).filter { $0.ppid == master.pid }
                #expect(workers.count == 2)
                #expect(getpgid(master.pid) == master.pid && getpgid(pid) != master.pid,
                        "a generation leads its own process group, apart from hupwatch's")
                expectServiceVisible(dir, server: "swsgi")
                let kill9 = try await s.ctl("signal", "KILL", "app")
                #expect(kill9.status == 0, "supervisorctl signal KILL: \(kill9.output)")
                try await waitFor("the SIGKILLed hupwatch's generation and workers to die (-k)", timeout: 10) {
                    !isAlive(pid) && !isAlive(master.pid) && workers.allSatisfy { !isAlive($0.pid) }
                }
                try await waitFor("supervisord to restart app", timeout: 20) {
                    dir.read("supervisord.log").contains("exited: app (terminated by SIGKILL; not expected)")
                        && s.programLog.components(separatedBy: "generation 1 is ready").count == 3
                }
                let restarted = try await s.pid()
                #expect(restarted != pid)
                try await waitFor("the restarted app to answer", timeout: 10) { unixGetFailure(dir.file("app.sock")) == nil }
                report("supervisord: SIGKILL to hupwatch \(pid) took generation \(master.pid) and its 2 workers with it (-k); restarted as \(restarted)")

                let stop = try await s.ctl("stop", "app")
                #expect(stop.output.contains("app: stopped"), "supervisorctl stop: \(stop.output)")
                // supervisord reports the exit status in its log; hupwatch passes on the drained generation's 0.
                #expect(dir.read("supervisord.log").contains("stopped: app (exit status 0)"),
                        "supervisord.log: \(dir.read("supervisord.log"))")
                let status = try await s.ctl("status", "app")
                #expect(status.output.contains("STOPPED"), "supervisorctl status: \(status.output)")
                #expect(s.programLog.contains("hupwatch[\(restarted)]: generation 1 exited (exit status 0)"))
                #expect(!isAlive(restarted))
                try await expectNoServiceLeft(dir, allowed: Supervisord.plumbing, "supervisorctl stop app")
                // swsgi removes its own socket path at exit (it was still its inode).
                #expect(access(dir.file("app.sock"), F_OK) != 0)
                try await s.shutdown()
            } catch {
                recordLog("supervisord log", dir.read("supervisord.log"))
                recordLog("program log", sup?.programLog)
                await tearDown(dir, children: [sup?.daemon])
                throw error
            }
            await tearDown(dir, children: [sup?.daemon])
        }

        @Test("supervisord: gunicorn in --listen mode (LISTEN_FDS, no --bind), 3 reloads, 0 failed")
        func gunicorn() async throws {
            let dir = try TempDir()
            var sup: Supervisord? = nil
            do {
                let gunicorn = try await pythonTool("gunicorn")
                try dir.mkdir("app")
                try FileManager.default.copyItem(atPath: examplesDir + "/apps/hello.py", toPath: dir.file("app/hello.py"))
                var subs = try standardSubstitutions(dir)
                subs.insert(("/srv/app/venv/bin/gunicorn", gunicorn), at: 0)
                subs.insert(("/srv/app", dir.file("app")), at: 1)
                let program = try example("supervisord/gunicorn.conf", subs)
                // HOME in the folder: gunicorn's default control socket would appear at $HOME/.gunicorn.
                sup = try await Supervisord(dir: dir, program: program, extraEnvironment: ["HOME": dir.path])
                let s = sup!
                try await s.waitRunning()
                let pid = try await s.pid()
                #expect(procEntry(pid)?.comm == "hupwatch")
                try await waitFor("generation 1 ready", timeout: 30) { s.programLog.contains("generation 1 is ready") }
                let socket = dir.file("app.sock")
                var st = stat()
                #expect(stat(socket, &st) == 0)
                let inode = st.st_ino

                let load = try await reloadThreeTimesUnderLoad(
                    socket: socket, log: { s.programLog }, supervisorPid: { try await s.pid() },
                    reload: {
                        let r = try await s.ctl("signal", "HUP", "app")
                        #expect(r.status == 0, "supervisorctl signal: \(r.output)")
                    })
                report("supervisord + gunicorn --listen: \(load), 3 reloads")

                // hupwatch's listener was never rebound nor removed: gunicorn left the path alone.
                var st2 = stat()
                #expect(stat(socket, &st2) == 0 && st2.st_ino == inode, "the --listen socket path changed during reloads")
                #expect(s.programLog.contains("Starting gunicorn"))
                // --no-control-socket: no generation opened $HOME/.gunicorn/gunicorn.ctl.
                #expect(access(dir.file(".gunicorn/gunicorn.ctl"), F_OK) != 0)

                expectServiceVisible(dir, server: "gunicorn")
                let stop = try await s.ctl("stop", "app")
                #expect(stop.output.contains("app: stopped"), "supervisorctl stop: \(stop.output)")
                #expect(dir.read("supervisord.log").contains("stopped: app (exit status 0)"),
                        "supervisord.log: \(dir.read("supervisord.log"))")
                try await expectNoServiceLeft(dir, allowed: Supervisord.plumbing, "supervisorctl stop app")
                // hupwatch bound the --listen path, so it removes it at exit.
                #expect(access(socket, F_OK) != 0)
                try await s.shutdown()
            } catch {
                recordLog("supervisord log", dir.read("supervisord.log"))
                recordLog("program log", sup?.programLog)
                await tearDown(dir, children: [sup?.daemon])
                throw error
            }
            await tearDown(dir, children: [sup?.daemon])
        }
    }
}
