import Foundation
import Glibc
import Testing

/// Copies an example service directory into the test's folder with the paths substituted.
func installServiceDir(_ relative: String, to target: String, _ dir: TempDir, _ subs: [(String, String)]) throws {
    for name in ["run", "finish", "log/run", "timeout-kill"] {
        guard FileManager.default.fileExists(atPath: examplesDir + "/\(relative)/\(name)") else { continue }
        try dir.write("\(target)/\(name)", try example("\(relative)/\(name)", subs), executable: name != "timeout-kill")
    }
}

/// runsvdir on a service folder of the test's own; `sv` addresses the service by its path.
struct Runit {
    let dir: TempDir
    let service: String
    let svPath: String
    let runsvdir: Child
    static let plumbing: Set<String> = ["runsvdir", "runsv", "svlogd"]

    init(dir: TempDir, example relative: String, subs: [(String, String)]) throws {
        let runsvdirPath = try tool("runsvdir", install: "apt-get install -y runit")
        svPath = try tool("sv", install: "apt-get install -y runit")
        _ = try tool("svlogd", install: "apt-get install -y runit")
        self.dir = dir
        try installServiceDir(relative, to: "service/app", dir, subs)
        service = dir.file("service/app")
        // -P: each runsv in a session of its own, as runit's own init scripts start it.
        runsvdir = try Child([runsvdirPath, "-P", dir.file("service")], output: dir.file("runsvdir.out"),
                             environment: childEnvironment(marker: dir.path))
    }

    func sv(_ args: String...) async throws -> CommandResult {
        try await run([svPath] + args, environment: childEnvironment(marker: dir.path))
    }

    /// The pid `sv status` shows for the service (not its log service).
    func pid() async throws -> pid_t {
        let r = try await sv("status", service)
        guard r.output.hasPrefix("run: "), let open = r.output.range(of: "(pid "),
              let close = r.output[open.upperBound...].firstIndex(of: ")"),
              let p = pid_t(r.output[open.upperBound..<close]) else { throw Failure("sv status: \(r.output)") }
        return p
    }

    var log: String { rotatedLog(dir) }

    func waitUp(_ firstGenerationTimeout: Double = 20) async throws {
        try await waitFor("runsv to start the service and generation 1 to be ready; log:\n\(log)", timeout: firstGenerationTimeout) {
            if !runsvdir.running { throw Failure("runsvdir exited: \(runsvdir.output)") }
            return log.contains("generation 1 is ready")
        }
    }

    /// runsvdir first (TERM: it exits at once, leaving runsv alone), else its next scan would start a
    /// new runsv for the service once `sv exit` has ended the old one.
    func shutdown() async throws {
        runsvdir.signal(SIGTERM)
        _ = try await runsvdir.wait(timeout: 10, "runsvdir")
        _ = try? await sv("exit", service)
        try await waitFor("runsv and the log service to exit", timeout: 20) { markedProcesses(dir).isEmpty }
    }
}

/// s6-svscan on a scan folder of the test's own.
struct S6 {
    let dir: TempDir
    let service: String
    let svscan: Child
    let svc: String, svstat: String, svscanctl: String
    static let plumbing: Set<String> = ["s6-svscan", "s6-supervise", "s6-log"]

    init(dir: TempDir, example relative: String, subs: [(String, String)]) throws {
        let install = "apt-get install -y s6"
        let scan = try tool("s6-svscan", install: install)
        svc = try tool("s6-svc", install: install)
        svstat = try tool("s6-svstat", install: install)
        svscanctl = try tool("s6-svscanctl", install: install)
        _ = try tool("s6-log", install: install)
        self.dir = dir
        try installServiceDir(relative, to: "scan/app", dir, subs)
        service = dir.file("scan/app")
        svscan = try Child([scan, dir.file("scan")], output: dir.file("svscan.out"), environment: childEnvironment(marker: dir.path))
    }

    func run6(_ argv: [String]) async throws -> CommandResult {
        try await run(argv, environment: childEnvironment(marker: dir.path))
    }

    func status() async throws -> String {
        try await run6([svstat, service]).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The pid `s6-svstat` shows: "up (pid N) S seconds".
    func pid() async throws -> pid_t {
        let s = try await status()
        guard s.hasPrefix("up (pid "), let p = pid_t(s.dropFirst(8).prefix { $0.isNumber }) else { throw Failure("s6-svstat: \(s)") }
        return p
    }

    var log: String { rotatedLog(dir) }

    func waitUp() async throws {
        try await waitFor("s6-supervise to start the service and generation 1 to be ready; log:\n\(log)", timeout: 20) {
            if !svscan.running { throw Failure("s6-svscan exited: \(svscan.output)") }
            return log.contains("generation 1 is ready")
        }
    }

    func shutdown() async throws {
        _ = try? await run6([svscanctl, "-t", dir.file("scan")])
        _ = try await svscan.wait(timeout: 20, "s6-svscan")
    }
}

extension SupervisorExamples {
    @Suite struct RunitExample {
        @Test("runit: swsgi under hupwatch, 3 reloads by `sv hup`, stop by `sv -w 40 stop`, status via ./finish")
        func swsgi() async throws {
            let dir = try TempDir()
            var r: Runit? = nil
            do {
                r = try Runit(dir: dir, example: "runit/app", subs: try standardSubstitutions(dir))
                let s = r!
                try await s.waitUp()
                let pid = try await s.pid()
                #expect(procEntry(pid)?.comm == "hupwatch", "runsv should supervise hupwatch itself (exec in ./run)")
                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { s.log }, supervisorPid: { try await s.pid() },
                    reload: {
                        let out = try await s.sv("hup", s.service)
                        #expect(out.status == 0, "sv hup: \(out.output)")
                    })
                report("runit + swsgi: \(load), 3 reloads, pid \(pid) kept")
                // exec 2>&1 + svlogd: hupwatch's and swsgi's lines in one log (svlogd writes it on its own time).
                try await waitFor("hupwatch's and swsgi's lines in svlogd's log; log:\n\(s.log)", timeout: 10) {
                    s.log.contains("hupwatch[\(pid)]") && s.log.contains("swsgi master")
                }

                expectServiceVisible(dir, server: "swsgi")
                let stop = try await s.sv("-w", "40", "stop", s.service)
                #expect(stop.status == 0 && stop.output.hasPrefix("ok: down: "), "sv stop: \(stop.output)")
                // runit shows no exit status in `sv status`; runsv hands it to ./finish, which logs it.
                try await waitFor("./finish to log the exit status; log:\n\(s.log)", timeout: 10) {
                    s.log.contains("app finished: exit code 0, signal 0")
                }
                let status = try await s.sv("status", s.service)
                #expect(status.output.hasPrefix("down: "), "sv status: \(status.output)")
                #expect(!isAlive(pid))
                try await expectNoServiceLeft(dir, allowed: Runit.plumbing, "sv stop")
                #expect(unixGetFailure(dir.file("app.sock")) != nil, "nothing may answer once the service is down")
                try await s.shutdown()
            } catch {
                recordLog("service log", r?.log)
                await tearDown(dir, children: [r?.runsvdir])
                throw error
            }
            await tearDown(dir, children: [r?.runsvdir])
        }

        @Test("runit: uWSGI in --listen mode under hupwatch, 3 reloads by `sv hup`, 0 failed")
        func uwsgi() async throws {
            let dir = try TempDir()
            var r: Runit? = nil
            do {
                let uwsgi = try tool("uwsgi", install: "apt-get install -y uwsgi uwsgi-plugin-python3")
                guard FileManager.default.fileExists(atPath: "/usr/lib/uwsgi/plugins/python3_plugin.so") else {
                    throw Failure("uWSGI's python3 plugin is not installed: run `apt-get install -y uwsgi-plugin-python3`")
                }
                try dir.mkdir("app")
                try FileManager.default.copyItem(atPath: examplesDir + "/apps/hello.py", toPath: dir.file("app/hello.py"))
                var subs = try standardSubstitutions(dir)
                subs += [("/usr/bin/uwsgi", uwsgi), ("/srv/app", dir.file("app"))]
                r = try Runit(dir: dir, example: "runit/uwsgi-app", subs: subs)
                let s = r!
                try await s.waitUp(30)
                let pid = try await s.pid()
                #expect(procEntry(pid)?.comm == "hupwatch")
                var st = stat()
                #expect(stat(dir.file("app.sock"), &st) == 0)
                let inode = st.st_ino
                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { s.log }, supervisorPid: { try await s.pid() },
                    reload: {
                        let out = try await s.sv("hup", s.service)
                        #expect(out.status == 0, "sv hup: \(out.output)")
                    })
                report("runit + uWSGI --listen: \(load), 3 reloads")
                // The logger writes on its own time: wait for the lines.
                try await waitFor("uWSGI adopting hupwatch's listener, and its graceful TERM hook, in the log; log:\n\(s.log)", timeout: 10) {
                    s.log.contains("SystemD socket activation detected") && s.log.contains("gracefully_kill_them_all")
                }
                var st2 = stat()
                #expect(stat(dir.file("app.sock"), &st2) == 0 && st2.st_ino == inode)

                expectServiceVisible(dir, server: "uwsgi")
                let stop = try await s.sv("-w", "40", "stop", s.service)
                #expect(stop.status == 0 && stop.output.hasPrefix("ok: down: "), "sv stop: \(stop.output)")
                try await waitFor("./finish to log the exit status", timeout: 10) {
                    s.log.contains("app finished: exit code 0, signal 0")
                }
                try await expectNoServiceLeft(dir, allowed: Runit.plumbing, "sv stop")
                try await s.shutdown()
            } catch {
                recordLog("service log", r?.log)
                await tearDown(dir, children: [r?.runsvdir])
                throw error
            }
            await tearDown(dir, children: [r?.runsvdir])
        }
    }

    @Suite struct S6Example {
        @Test("s6: swsgi under hupwatch, 3 reloads by `s6-svc -h`, stop by `s6-svc -wD -d`, exit code in s6-svstat")
        func swsgi() async throws {
            let dir = try TempDir()
            var s6: S6? = nil
            do {
                s6 = try S6(dir: dir, example: "s6/app", subs: try standardSubstitutions(dir))
                let s = s6!
                try await s.waitUp()
                let pid = try await s.pid()
                #expect(procEntry(pid)?.comm == "hupwatch", "s6-supervise should supervise hupwatch itself (exec in ./run)")
                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { s.log }, supervisorPid: { try await s.pid() },
                    reload: { try await check([s.svc, "-h", s.service], environment: childEnvironment(marker: dir.path)) })
                report("s6 + swsgi: \(load), 3 reloads, pid \(pid) kept")
                try await waitFor("hupwatch's and swsgi's lines in s6-log's log; log:\n\(s.log)", timeout: 10) {
                    s.log.contains("hupwatch[\(pid)]") && s.log.contains("swsgi master")
                }

                expectServiceVisible(dir, server: "swsgi")
                try await check([s.svc, "-wD", "-T", "45000", "-d", s.service], environment: childEnvironment(marker: dir.path))
                let status = try await s.status()
                // s6-svstat reports the exit code itself; ./finish logs it too.
                #expect(status.hasPrefix("down (exitcode 0)"), "s6-svstat: \(status)")
                try await waitFor("./finish to log the exit status", timeout: 10) {
                    s.log.contains("app finished: exit code 0, signal 0")
                }
                #expect(!isAlive(pid))
                try await expectNoServiceLeft(dir, allowed: S6.plumbing, "s6-svc -d")
                #expect(unixGetFailure(dir.file("app.sock")) != nil, "nothing may answer once the service is down")
                try await s.shutdown()
            } catch {
                recordLog("service log", s6?.log)
                await tearDown(dir, children: [s6?.svscan])
                throw error
            }
            await tearDown(dir, children: [s6?.svscan])
        }
    }
}


/// The whole log of an svlogd or s6-log directory: the rotated files (`@<tai64n>.s`/`.u`, oldest first),
/// then `current`. Both loggers rotate at about 100 kB, which a logged load loop fills in seconds.
func rotatedLog(_ dir: TempDir) -> String {
    let folder = dir.file("log")
    let rotated = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix("@") }.sorted()
    return (rotated + ["current"]).map { dir.read("log/" + $0) }.joined()
}
