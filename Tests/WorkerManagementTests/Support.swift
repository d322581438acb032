// A real swsgi master (and its workers) started by a worker-management test, and readers of its log
// and stats, on TestSupport's child processes and clients.
import Foundation
import Glibc
import Testing
@_exported import TestSupport

/// Every suite here starts real swsgi processes: they all hang under this one and run one at a time.
@Suite(.serialized) struct WorkerManagementIntegration {}

/// One running swsgi master (and its workers), stderr in a file in its own temp folder.
final class Swsgi: @unchecked Sendable {
    let dir: String
    let socket: String
    let statsPath: String
    let logPath: String
    let child: Child
    /// Every worker pid seen (stats or log), checked gone at the end.
    var seenPIDs = Set<Int32>()
    private var stopped = false

    var pid: Int32 { child.pid }

    /// Starts `swsgi --socket DIR/s --stats DIR/st ARGS` and waits for "N workers accepting".
    static func start(_ args: [String], readyTimeout: Double = 10) async throws -> Swsgi {
        let s = try Swsgi(args)
        do {
            try await waitFor(readyTimeout, "swsgi ready; log:\n\(s.log())") {
                if let code = s.child.exitCode { throw WMFailure("swsgi exited early (\(code)); log:\n\(s.log())") }
                return s.log().contains("workers accepting")
            }
            _ = try s.stats()
        } catch {
            s.stop()
            throw error
        }
        return s
    }

    private init(_ args: [String]) throws {
        dir = try makeTempDir()
        socket = dir + "/s"
        statsPath = dir + "/st"
        logPath = dir + "/log"
        do {
            child = try Child([try swsgiBinary(), "--socket", socket, "--stats", statsPath] + args, output: logPath,
                              environment: cleanEnvironment(), newProcessGroup: false)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    func logLines() -> [String] { log().split(separator: "\n").map(String.init) }
    func lines(containing s: String) -> [String] { logLines().filter { $0.contains(s) } }

    /// Waits for a log line containing `text` (the `occurrence`-th one) and returns it.
    @discardableResult
    func waitForLine(_ text: String, occurrence: Int = 1, timeout: Double) async throws -> String {
        var found: String? = nil
        try await waitFor(timeout, "log line '\(text)' #\(occurrence); log:\n\(log().suffix(3000))") {
            let l = lines(containing: text)
            if l.count >= occurrence { found = l[occurrence - 1]; return true }
            return false
        }
        return found!
    }

    /// The stats socket's raw JSON (written on connect).
    func stats() throws -> StatsView {
        let text = try rawStats(statsPath)
        guard let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw WMFailure("stats: not a JSON object: \(text)")
        }
        let v = StatsView(obj)
        for w in v.workers { seenPIDs.insert(w.pid) }
        return v
    }

    /// SIGINT (immediate stop), then SIGKILL if it lingers; reaps the master, waits for the workers to be
    /// gone, removes the temp folder. Safe to call twice.
    func stop() {
        guard !stopped else { return }
        stopped = true
        child.stop(SIGINT, timeout: 6)
        // Workers die with the master (PDEATHSIG SIGKILL). Reap any that were handed to us; SIGKILL
        // only pids the stats socket reported that are still swsgi processes.
        let deadline = monoNow() + 3
        for p in seenPIDs where p != child.pid {
            var st: Int32 = 0
            while isSwsgi(p) && monoNow() < deadline { _ = waitpid(p, &st, WNOHANG); usleep(10_000) }
            if isSwsgi(p) { kill(p, SIGKILL); _ = waitpid(p, &st, WNOHANG) }
        }
        logPIDs = Set(logLines().flatMap(pidsIn))
        try? FileManager.default.removeItem(atPath: dir)
    }

    private var logPIDs = Set<Int32>()

    /// swsgi processes (stats-reported or named in the log) still alive after `stop()` (should be none).
    func survivors() -> [Int32] { seenPIDs.union(logPIDs).filter(isSwsgi).sorted() }
}

/// A live (non-zombie) process running swsgi: guards against acting on a recycled pid.
func isSwsgi(_ pid: Int32) -> Bool {
    guard isAlive(pid), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
    return String(decoding: data, as: UTF8.self).contains("swsgi")
}

/// `(pid 123)` and `[pid 123]` in a log line.
func pidsIn(_ line: String) -> [Int32] {
    var out: [Int32] = []
    var rest = Substring(line)
    while let r = rest.range(of: "pid ") {
        let digits = rest[r.upperBound...].prefix { $0.isNumber }
        if let p = Int32(digits) { out.append(p) }
        rest = rest[r.upperBound...]
    }
    return out
}

/// Log timestamp `2026-11-23T20:20:08.028Z` at the start of a master line, as epoch milliseconds.
func logTimeMillis(_ line: String) -> Int64? {
    let s = Array(line.utf8.prefix(24))
    guard s.count == 24, s[10] == UInt8(ascii: "T"), s[19] == UInt8(ascii: "."), s[23] == UInt8(ascii: "Z") else { return nil }
    func num(_ a: Int, _ b: Int) -> Int32? { Int32(String(decoding: s[a..<b], as: UTF8.self)) }
    guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16),
          let sec = num(17, 19), let ms = num(20, 23) else { return nil }
    var t = tm()
    t.tm_year = y - 1900; t.tm_mon = mo - 1; t.tm_mday = d; t.tm_hour = h; t.tm_min = mi; t.tm_sec = sec
    return Int64(timegm(&t)) * 1000 + Int64(ms)
}

/// The number after `key` in `line` (`running 1003 ms` -> 1003 for key "running ").
func number(after key: String, in line: String) -> Int? {
    guard let r = line.range(of: key) else { return nil }
    return Int(line[r.upperBound...].prefix { $0.isNumber })
}

// MARK: stats

struct WorkerView {
    let id: Int
    let pid: Int32
    let status: String
    let requests: Int
    let harakiriCount: Int
    let respawnCount: Int
    let requestAgeMs: Int?
}

struct StatsView {
    let listenQueue: Int?
    let workers: [WorkerView]

    init(_ o: [String: Any]) {
        listenQueue = o["listen_queue"] as? Int
        workers = ((o["workers"] as? [[String: Any]]) ?? []).map {
            WorkerView(id: $0["id"] as? Int ?? -1, pid: Int32($0["pid"] as? Int ?? -1), status: $0["status"] as? String ?? "",
                       requests: $0["requests"] as? Int ?? -1, harakiriCount: $0["harakiri_count"] as? Int ?? -1,
                       respawnCount: $0["respawn_count"] as? Int ?? -1, requestAgeMs: $0["request_age_ms"] as? Int)
        }
    }

    var active: [WorkerView] { workers.filter { $0.status != "retiring" } }
    var pids: Set<Int32> { Set(workers.map(\.pid)) }
}
