import Foundation
import Glibc

// What /proc says about a process. Reading /proc never signals anything, so it is safe on any pid.

/// The whole of a /proc file. Foundation stops after the first short read, and seq files such as
/// /proc/net/unix hand out their content one read at a time.
public func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return String(decoding: out, as: UTF8.self) }
        out += buf[..<n]
    }
}

/// The numeric entries of /proc/PID/fd, sorted; nil when the process is gone.
public func openFDs(_ pid: pid_t) -> [Int]? {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
    return names.compactMap(Int.init).sorted()
}

/// How many fds the process holds (this test process by default); nil when it is gone.
public func openFDCount(_ pid: pid_t = getpid()) -> Int? { openFDs(pid)?.count }

/// What /proc/PID/fd/N links to (`socket:[123]`, `/dev/null`).
public func fdTarget(_ pid: pid_t, _ fd: Int) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
}

/// /proc/PID/environ as a dictionary.
public func environment(of pid: pid_t) -> [String: String] {
    guard let data = readProcFile("/proc/\(pid)/environ") else { return [:] }
    var out: [String: String] = [:]
    for entry in data.split(separator: "\0") {
        if let eq = entry.firstIndex(of: "=") { out[String(entry[..<eq])] = String(entry[entry.index(after: eq)...]) }
    }
    return out
}

/// /proc/PID/cmdline as arguments.
public func commandLine(of pid: pid_t) -> [String] {
    guard let data = readProcFile("/proc/\(pid)/cmdline") else { return [] }
    return data.split(separator: "\0").map(String.init)
}

/// argv[0] as /proc shows it (swsgi rewrites it to its process title).
public func processTitle(_ pid: pid_t) -> String? {
    guard let data = readProcFile("/proc/\(pid)/cmdline") else { return nil }
    return String(data.prefix { $0 != "\0" })
}

/// A `Key:\tvalue` line of /proc/PID/status.
public func statusField(_ pid: pid_t, _ key: String) -> String? {
    guard let text = readProcFile("/proc/\(pid)/status") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [11] utime, [12] stime.
public func statFields(_ pid: pid_t) -> [String]? {
    guard let text = readProcFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").map(String.init)
}

/// The /proc/PID/stat state letter, nil when the pid is gone.
public func processState(_ pid: pid_t) -> Character? { statFields(pid)?.first?.first }

/// Running (or sleeping, or stopped): present in /proc and not a zombie.
public func isAlive(_ pid: pid_t) -> Bool {
    guard let state = processState(pid) else { return false }
    return state != "Z" && state != "X"
}

/// User plus system CPU ticks the process has used.
public func cpuTicks(_ pid: pid_t) -> Int? {
    guard let f = statFields(pid), f.count > 12, let u = Int(f[11]), let s = Int(f[12]) else { return nil }
    return u + s
}

/// Direct children of `pid` (zombies included), from /proc/PID/task/*/children, sorted.
public func children(of pid: pid_t) -> [pid_t] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    var out: [pid_t] = []
    for task in tasks {
        guard let text = readProcFile("/proc/\(pid)/task/\(task)/children") else { continue }
        out += text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
    return out.sorted()
}

/// Direct children of `pid` (the swsgi tests' name for `children(of:)`).
public func childPIDs(of pid: pid_t) -> [pid_t] { children(of: pid) }

/// The socket inode /proc/net/unix lists for a listener bound at `path` (what /proc/PID/fd shows as socket:[N]).
public func boundSocketInode(_ path: String) -> String? {
    guard let text = readProcFile("/proc/net/unix") else { return nil }
    for line in text.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        if f.count >= 8, f[7] == path { return String(f[6]) }
    }
    return nil
}

/// One line of a process listing.
public struct ProcEntry: CustomStringConvertible, Sendable {
    public let pid: pid_t
    public let ppid: pid_t
    public let state: String
    public let comm: String
    public let cmdline: String
    public var description: String { "\(pid) [\(comm), \(state), ppid \(ppid)] \(cmdline)" }
}

public func procEntry(_ pid: pid_t) -> ProcEntry? {
    guard let stat = readProcFile("/proc/\(pid)/stat"), let open = stat.firstIndex(of: "("),
          let close = stat.lastIndex(of: ")") else { return nil }
    let comm = String(stat[stat.index(after: open)..<close])
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 2 else { return nil }
    let cmd = (readProcFile("/proc/\(pid)/cmdline") ?? "").replacingOccurrences(of: "\0", with: " ")
    return ProcEntry(pid: pid, ppid: pid_t(fields[1]) ?? 0, state: String(fields[0]), comm: comm, cmdline: cmd)
}

/// Every pid in /proc, sorted.
public func allPids() -> [pid_t] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(pid_t.init).sorted()
}
