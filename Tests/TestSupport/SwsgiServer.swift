// A real swsgi master launched by a test (SWSGITests and WSGITests share it): on TestSupport's child
// processes, temp folders and clients.
import Foundation
import Glibc

// MARK: - A running swsgi

/// One swsgi master launched by a test. `stop()` (or deinit) always reaps it.
public final class Server {
    public let dir: TempDir
    public let pid: pid_t
    private let child: Child
    /// `--socket` path (nil when the test passes its own listener).
    public let socket: String?
    public let stderrPath: String
    public let arguments: [String]
    /// Exit status once reaped: the code, or 128 + the signal.
    public var exitStatus: Int32? { child.exitCode }

    /// Launches swsgi with `arguments` ("{dir}" replaced by the temp dir; `--socket DIR/s` appended unless
    /// `socket` is nil) and, when `ready`,
    /// waits until every worker accepts. `shell`: run through `/bin/sh -c SHELL swsgi ARGS...`.
    public init(_ arguments: [String], dir: TempDir, socket: String? = "s", environment: [String: String] = [:],
         shell: String? = nil, fd3: Int32? = nil, ready: Bool = true, name: String = "swsgi",
         newProcessGroup: Bool = false) throws {
        self.dir = dir
        self.socket = socket.map { dir.file($0) }
        // "{dir}" in an argument stands for the temp dir.
        var args = arguments.map { $0.replacingOccurrences(of: "{dir}", with: dir.path) }
        if let s = self.socket { args += ["--socket", s] }
        self.arguments = args
        stderrPath = dir.file("\(name).log")
        let binary = try swsgiBinary()
        let argv = shell.map { ["/bin/sh", "-c", $0, binary] } ?? [binary]
        child = try Child(argv + args, output: stderrPath, environment: cleanEnvironment(environment), fd3: fd3,
                          newProcessGroup: newProcessGroup)
        pid = child.pid
        if ready {
            do { try waitReady() } catch {
                stop(timeout: 2)
                throw error
            }
        }
    }

    deinit { stop(timeout: 5) }

    /// Everything swsgi wrote to stderr (and stdout) so far.
    public var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public var logLines: [String] { log.split(separator: "\n").map(String.init) }

    /// Reaps the master if it has ended; true while it runs.
    public var isRunning: Bool { child.running }

    /// Waits until the master logs that all workers accept (and the socket exists).
    public func waitReady(timeout: Double = 15) throws {
        let ok = waitUntil(timeout) {
            !isRunning || (log.contains("workers accepting") && (socket.map(fileExists) ?? true))
        }
        guard ok, isRunning else {
            throw TestFailure("swsgi \(arguments) did not become ready; exit status \(exitStatus.map(String.init) ?? "none"); log:\n\(log)")
        }
    }

    /// Waits until `text` occurs `count` times in the log.
    @discardableResult
    public func waitForLog(_ text: String, count: Int = 1, timeout: Double = 10) -> Bool {
        waitUntil(timeout) { log.components(separatedBy: text).count - 1 >= count }
    }

    /// Only the master we launched, and only while it has not been reaped.
    public func signal(_ sig: Int32) { child.signal(sig) }

    /// `sig` to the master's whole process group, workers included (systemd's KillMode=control-group,
    /// timeout(1)); only for a server started with `newProcessGroup`, whose group is its own pid.
    public func signalGroup(_ sig: Int32) {
        guard isRunning else { return }
        kill(-pid, sig)
    }

    /// Exit status once the master has ended within `timeout`, else nil.
    public func waitExit(timeout: Double) -> Int32? { child.waitExit(timeout: timeout) }

    /// SIGTERM, then SIGKILL if it lingers; always reaps. Returns the exit status.
    @discardableResult
    public func stop(timeout: Double = 10) -> Int32 { child.stop(SIGTERM, timeout: timeout) }

    /// The master's worker processes right now.
    public var workers: [Int32] { childPIDs(of: pid) }

    /// Waits until the master has exactly `n` children, all titled `swsgi worker N`; returns them.
    @discardableResult
    public func waitWorkers(_ n: Int, timeout: Double = 10, where extra: ([Int32]) -> Bool = { _ in true }) -> [Int32] {
        var pids: [Int32] = []
        _ = waitUntil(timeout) {
            pids = workers
            return pids.count == n && pids.allSatisfy { processTitle($0)?.hasPrefix("swsgi worker") == true } && extra(pids)
        }
        return pids
    }

    public func connect() throws -> Client {
        guard let socket else { throw TestFailure("no socket path") }
        return try Client(path: socket)
    }

    /// One request on a new connection.
    public func get(_ target: String, headers: [String] = [], timeout: Double = 10) throws -> HTTPReply {
        let c = try connect()
        try c.send(httpGet(target, headers: headers))
        return try c.readResponse(timeout: timeout)
    }
}

/// Runs swsgi to completion (for invocations that must fail fast): exit status and output.
public func runToExit(_ arguments: [String], environment: [String: String] = [:], socket: String? = nil,
               in dir: TempDir? = nil, timeout: Double = 10) throws -> (status: Int32, output: String) {
    let d = try dir ?? TempDir()
    defer { if dir == nil { d.remove() } }
    let s = try Server(arguments, dir: d, socket: socket, environment: environment, ready: false)
    defer { s.stop(timeout: 1) }
    guard let status = s.waitExit(timeout: timeout) else {
        throw TestFailure("swsgi \(arguments) still running after \(timeout) s; log:\n\(s.log)")
    }
    return (status, s.log)
}

