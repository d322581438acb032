import Foundation
import Glibc
import Testing

// The container example's ENTRYPOINT, run as PID 1 of a new PID namespace (`unshare --pid --fork
// --mount-proc`), the isolation a container runtime gives. The test plays the runtime: it signals
// PID 1 from outside the namespace, as `docker kill` does, and reads the exit status `unshare`
// passes out, as the runtime reports the container's.

/// The ENTRYPOINT of the example Dockerfile (exec form: a JSON array).
func dockerEntrypoint() throws -> [String] {
    let text = try String(contentsOfFile: examplesDir + "/container/Dockerfile", encoding: .utf8)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ENTRYPOINT [") }),
          let argv = try JSONSerialization.jsonObject(with: Data(line.dropFirst("ENTRYPOINT ".count).utf8)) as? [String]
    else { throw Failure("no exec-form ENTRYPOINT in the example Dockerfile") }
    return argv
}

/// A command run as PID 1 of a new PID namespace; `pid1` is its pid as seen from here.
struct PidNamespace {
    let unshare: Child
    let pid1: pid_t

    static func start(_ argv: [String], dir: TempDir, output: String) async throws -> PidNamespace {
        let unsharePath = try tool("unshare", install: "apt-get install -y util-linux")
        let u = try Child([unsharePath, "--pid", "--fork", "--mount-proc"] + argv, output: output,
                          environment: childEnvironment(marker: dir.path))
        var pid1: pid_t = 0
        try await waitFor("the namespace's PID 1 to start", timeout: 10) {
            if !u.running { throw Failure("unshare exited \(u.exitCode ?? -1): \(u.output)") }
            pid1 = allPids().first { procEntry($0)?.ppid == u.pid } ?? 0
            return pid1 > 0 && procEntry(pid1)?.comm == "hupwatch"
        }
        return PidNamespace(unshare: u, pid1: pid1)
    }

    /// The pid a process has inside its innermost namespace (last field of NSpid).
    static func namespacePid(_ pid: pid_t) -> pid_t? {
        guard let status = readProcFile("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last.flatMap { pid_t($0) }
    }
}

extension SupervisorExamples {
    @Suite struct ContainerExample {
        @Test("container: the ENTRYPOINT as PID 1: 3 HUP reloads with 0 failed, SIGTERM drains, exit status 0 passed out")
        func entrypointAsPid1() async throws {
            let dir = try TempDir()
            var ns: PidNamespace? = nil
            do {
                let argv = try dockerEntrypoint().map { arg in
                    try standardSubstitutions(dir).reduce(arg) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
                }
                #expect(argv.first?.hasSuffix("/hupwatch") == true)
                ns = try await PidNamespace.start(argv, dir: dir, output: dir.file("container.log"))
                let c = ns!
                #expect(PidNamespace.namespacePid(c.pid1) == 1, "hupwatch should be PID 1 in its namespace")
                try await waitFor("generation 1 ready", timeout: 15) { c.unshare.output.contains("generation 1 is ready") }
                let load = try await reloadThreeTimesUnderLoad(
                    socket: dir.file("app.sock"), log: { c.unshare.output },
                    supervisorPid: { allPids().first { procEntry($0)?.ppid == c.unshare.pid } ?? 0 },
                    reload: { kill(c.pid1, SIGHUP) })  // docker kill --signal HUP
                report("container PID 1 + swsgi: \(load), 3 reloads")
                expectServiceVisible(dir, server: "swsgi")
                kill(c.pid1, SIGTERM)  // docker stop
                let code = try await c.unshare.wait(timeout: 40, "the container (unshare)")
                #expect(code == 0, "the container's exit status: \(code)")
                #expect(c.unshare.output.contains("received SIGTERM: stopping every generation"))
                #expect(c.unshare.output.contains("graceful shutdown"))
                #expect(c.unshare.output.contains("generation 4 exited (exit status 0)"))
                try await expectNoServiceLeft(dir, allowed: [], "SIGTERM to PID 1")
            } catch {
                recordLog("container log", ns?.unshare.output)
                await tearDown(dir, children: [ns?.unshare])
                throw error
            }
            await tearDown(dir, children: [ns?.unshare])
        }

        @Test("container: PID 1 reaps an orphaned zombie, forwards USR1, passes a generation's exit status (7) out")
        func pid1ReapsAndPassesStatus() async throws {
            let dir = try TempDir()
            var ns: PidNamespace? = nil
            do {
                // TestChild: --grandchild forks a process that outlives it in its process group.
                let argv = [try builtBinary("hupwatch"), "-v", "--", try builtBinary("TestChild"), "--socket", dir.file("t.sock"),
                            "--notify", "--grandchild", "--exit-code", "7"]
                ns = try await PidNamespace.start(argv, dir: dir, output: dir.file("container.log"))
                let c = ns!
                #expect(PidNamespace.namespacePid(c.pid1) == 1)
                var log: String { c.unshare.output }
                try await waitFor("generation 1 ready", timeout: 15) { log.contains("generation 1 is ready") }
                var grandchild: ProcEntry? = nil
                try await waitFor("generation 1's grandchild", timeout: 10) {
                    let gen1 = markedProcesses(dir).first { $0.ppid == c.pid1 && $0.comm == "TestChild" }
                    grandchild = gen1.flatMap { g in markedProcesses(dir).first { $0.ppid == g.pid && $0.comm == "TestChild" } }
                    return grandchild != nil
                }
                let gc = grandchild!
                let gcInside = try #require(PidNamespace.namespacePid(gc.pid))
                #expect(log.contains("forked grandchild \(gcInside)"))

                kill(c.pid1, SIGHUP)
                try await waitFor("reload: generation 2 ready, generation 1 gone; log:\n\(log)", timeout: 15) { reloadDone(log, generation: 2) }
                // Generation 1 exited; its grandchild, orphaned to PID 1 and killed with generation 1's
                // process group, must be reaped by PID 1: gone from /proc, not left a zombie.
                try await waitFor("the orphaned grandchild \(gc.pid) to be reaped (state now: \(procEntry(gc.pid)?.state ?? "gone"))",
                                  timeout: 10) { procEntry(gc.pid) == nil }
                #expect(log.contains("reaped pid \(gcInside)"), "hupwatch -v logs the descendants it reaps; log:\n\(log)")

                kill(c.pid1, SIGUSR1)
                try await waitFor("USR1 forwarded to the serving generation", timeout: 10) { log.contains("got SIGUSR1") }

                kill(c.pid1, SIGTERM)
                let code = try await c.unshare.wait(timeout: 40, "the container (unshare)")
                #expect(code == 7, "the serving generation's status must become the container's: \(code)")
                #expect(log.contains("generation 2 exited (exit status 7)"))
                try await expectNoServiceLeft(dir, allowed: [], "SIGTERM to PID 1")
            } catch {
                recordLog("container log", ns?.unshare.output)
                await tearDown(dir, children: [ns?.unshare])
                throw error
            }
            await tearDown(dir, children: [ns?.unshare])
        }
    }
}
