import Foundation
import Glibc
import Posix
import Testing
@_exported import TestSupport

/// Every suite that starts processes or sends signals hangs under this one, so they run one at a time.
@Suite(.serialized) struct HupwatchIntegration {}

// MARK: the status file

struct StatusDocument: Decodable {
    struct Gen: Decodable {
        let generation: Int
        let pid: pid_t
        let state: String
        let serving: Bool
        let age_ms: Int
    }
    struct Reload: Decodable {
        let generation: Int
        let outcome: String
        let reason: String
        let duration_ms: Int
    }
    let pid: pid_t
    let stopping: Bool
    let current_generation: Int?
    let generations: [Gen]
    let last_reload: Reload?

    var serving: Gen? { generations.first { $0.serving } }
    /// Exactly one generation left, ready and serving: nothing reloading, nothing draining.
    var settled: Bool { generations.count == 1 && generations[0].serving && generations[0].state == "ready" }
}

// MARK: a hupwatch under test

/// A hupwatch process started by the test: stdout and stderr go to files in the test's folder.
final class Hupwatch {
    let pid: pid_t
    let dir: TempDir
    let statusPath: String
    let stderrPath: String
    let stdoutPath: String
    private let child: Child
    /// Generations the test watches outlive hupwatch (it SIGKILLed hupwatch): `kill()` stops them too.
    var outliving: [pid_t] = []

    /// Starts `hupwatch --status-file DIR/status.json ARGS`.
    /// `environment` is added to the test's own; `launcher` runs first and must exec its arguments (same pid);
    /// `fd3` is handed over as fd 3 (socket activation); `strayFD` is a /dev/null hupwatch inherits without
    /// CLOEXEC, as from a careless parent.
    init(_ args: [String], dir: TempDir, statusFile: Bool = true, name: String = "hupwatch",
         environment: [String] = [], launcher: [String] = [], fd3: Int32? = nil, strayFD: Int32? = nil) throws {
        self.dir = dir
        statusPath = dir.file("\(name).status.json")
        stderrPath = dir.file("\(name).stderr")
        stdoutPath = dir.file("\(name).stdout")
        let all = launcher + [try binary("hupwatch")] + (statusFile ? ["--status-file", statusPath] : []) + args
        pid = try launch(all, stdout: stdoutPath, stderr: stderrPath, environment: environment, fd3: fd3, strayFD: strayFD)
        child = Child(adopting: pid, argv: all, output: stderrPath)
    }

    func signal(_ sig: Int32) { child.signal(sig) }

    /// The raw wait status once hupwatch has been reaped.
    var rawProcessEnd: Int32? { child.rawStatus }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    func status() -> StatusDocument? {
        guard let data = FileManager.default.contents(atPath: statusPath),
              let doc = try? JSONDecoder().decode(StatusDocument.self, from: data) else { return nil }
        return doc
    }

    /// Waits for a status document satisfying `condition` and returns it.
    @discardableResult
    func waitStatus(_ timeout: Double = 10, _ what: String, _ condition: (StatusDocument) -> Bool) throws -> StatusDocument {
        var last: StatusDocument? = nil
        try waitUntil(timeout, "\(what); last status: \(lastStatusText(last)); hupwatch stderr:\n\(stderr)") {
            try checkRunning()
            last = status()
            return last.map(condition) ?? false
        }
        return last!
    }

    private func lastStatusText(_ s: StatusDocument?) -> String {
        (try? String(contentsOfFile: statusPath, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? "none"
    }

    /// Waits until generation `n` alone serves, ready, and returns its pid.
    @discardableResult
    func waitServing(_ n: Int, timeout: Double = 10) throws -> pid_t {
        try waitStatus(timeout, "generation \(n) alone serving") { $0.current_generation == n && $0.settled }.serving!.pid
    }

    /// Throws if hupwatch exited when it should be running.
    func checkRunning() throws {
        if let code = poll() { throw TestFailure("hupwatch exited with \(code); stderr:\n\(stderr)") }
    }

    /// Reaps hupwatch if it has exited: its shell-style exit code, nil while it runs.
    @discardableResult
    func poll() -> Int32? { child.exitCode }

    var isRunning: Bool { poll() == nil }

    /// Waits for hupwatch to exit and returns its shell-style exit code.
    func waitExit(_ timeout: Double = 10) throws -> Int32 {
        try waitUntil(timeout, "hupwatch \(pid) to exit; stderr:\n\(stderr)") { poll() != nil }
        return poll()!
    }

    /// Lines of stderr containing `text`.
    func lines(containing text: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.contains(text) }
    }

    func waitLog(_ text: String, _ timeout: Double = 10) throws {
        try waitUntil(timeout, "hupwatch's stderr to contain \"\(text)\"; it is:\n\(stderr)") { stderr.contains(text) }
    }

    /// Failure-path cleanup: if hupwatch still runs, SIGKILL it and the generations its status file names.
    /// (Once hupwatch has exited on its own it has already stopped them: no stale pid is ever signalled.)
    func kill() {
        var pids = outliving.filter(isAlive)
        if poll() == nil {
            pids += status()?.generations.map(\.pid) ?? []
            child.signal(SIGKILL)
            _ = try? waitExit(10)
        }
        for p in pids where isAlive(p) { Glibc.kill(p, SIGKILL) }
        for p in pids { try? waitGone(p, 5) }
    }
}

/// Runs hupwatch to completion (for command lines it rejects): exit code, stdout, stderr.
func runHupwatch(_ args: [String], dir: TempDir, timeout: Double = 10) throws -> (code: Int32, stdout: String, stderr: String) {
    let hw = try Hupwatch(args, dir: dir, statusFile: false, name: "run-\(UInt32.random(in: 0...UInt32.max))")
    defer { hw.kill() }
    let code = try hw.waitExit(timeout)
    return (code, hw.stdout, hw.stderr)
}
