// What the supervisor example tests share beyond TestSupport: the example files with the test's paths
// put in, leftover checks, and the reload-under-load cycle every supervisor test runs.
import Foundation
import Glibc
import Testing
@_exported import TestSupport

/// Every supervisor test hangs under this one suite: they start real supervisors and processes, one at a time.
@Suite(.serialized) struct SupervisorExamples {}

let examplesDir = packageRoot + "/supervisor-examples"

/// An example file with its real-world paths replaced by the test's: the built binaries, the temp folder.
func example(_ relative: String, _ substitutions: [(String, String)]) throws -> String {
    var text = try String(contentsOfFile: examplesDir + "/" + relative, encoding: .utf8)
    for (from, to) in substitutions { text = text.replacingOccurrences(of: from, with: to) }
    return text
}

/// The substitutions every swsgi example needs.
func standardSubstitutions(_ dir: TempDir) throws -> [(String, String)] {
    [("/usr/local/bin/hupwatch", try builtBinary("hupwatch")), ("/usr/local/bin/swsgi", try builtBinary("swsgi")),
     ("/run/app", dir.path), ("/var/log/app", dir.file("log"))]
}

/// Asserts no process of the service (hupwatch, a generation, a worker) is left: whatever of the
/// test is still alive must be supervisor plumbing (`allowed` command names).
func expectNoServiceLeft(_ dir: TempDir, allowed: Set<String>, _ what: String) async throws {
    var left: [ProcEntry] = []
    do {
        try await waitFor("no process of the service to be left after \(what)", timeout: 10) {
            left = markedProcesses(dir).filter { !allowed.contains($0.comm) }
            return left.isEmpty
        }
    } catch {
        Issue.record("processes of the service left after \(what): \(left)")
        throw error
    }
}

/// The leftover check finds processes by the test's marker: make sure it sees the running service
/// (hupwatch and the server's master and workers, whose titles no longer name the folder).
func expectServiceVisible(_ dir: TempDir, server: String) {
    let seen = markedProcesses(dir)
    #expect(seen.contains { $0.comm == "hupwatch" }, "hupwatch not found by its marker: \(seen)")
    #expect(seen.filter { $0.comm.hasPrefix(server) }.count >= 3, "\(server) master and workers not found by their marker: \(seen)")
}

// MARK: the reload cycle every test runs

/// Log lines as hupwatch writes them, for waiting on a reload's end.
func reloadDone(_ log: String, generation n: Int) -> Bool {
    log.contains("generation \(n) is ready") && log.contains("generation \(n - 1) exited")
}

struct LoadResult: CustomStringConvertible {
    let ok: Int
    let failed: Int
    /// Requests completed between each reload command and the old generation's exit, summed.
    let duringReloads: Int
    var description: String { "\(ok + failed) requests (\(duringReloads) during the 3 reloads), \(failed) failed" }
}

/// Continuous requests during three reloads sent through `reload` (the supervisor's own command).
/// Checks after each reload that the supervisor still shows the same pid for the service and that
/// requests went on being answered.
func reloadThreeTimesUnderLoad(socket: String, log: () -> String, supervisorPid: () async throws -> pid_t,
                               reload: () async throws -> Void) async throws -> LoadResult {
    let pid0 = try await supervisorPid()
    let client = LoadClient(path: socket)
    var during = 0
    do {
        try await client.waitForMore(100)
        for n in 2...4 {
            let before = client.completed
            try await reload()
            try await waitFor("reload \(n - 1): generation \(n) ready and generation \(n - 1) gone; log:\n\(log())", timeout: 30) {
                reloadDone(log(), generation: n)
            }
            during += client.completed - before
            try await client.waitForMore(100)
            let pid = try await supervisorPid()
            #expect(pid == pid0, "the supervisor's pid for the service changed at reload \(n - 1): \(pid0) -> \(pid)")
        }
    } catch {
        await client.stop()
        throw error
    }
    await client.stop()
    let (ok, failed) = (client.succeeded, client.failedCount)
    #expect(failed == 0, "failed requests during reloads: \(failed) of \(ok + failed): \(client.failureSamples)")
    #expect(ok >= 400)
    return LoadResult(ok: ok, failed: failed, duringReloads: during)
}

/// Attaches a log to a failing test, when there is one (not when a tool was missing before any start).
func recordLog(_ title: String, _ text: String?) {
    guard let text, !text.isEmpty else { return }
    Issue.record("\(title):\n\(text.suffix(20_000))")
}

/// Prints a figure for the report.
func report(_ line: String) {
    let text = "[SupervisorTests] \(line)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
