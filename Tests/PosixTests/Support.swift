import Foundation
import Glibc
import Testing

struct Timeout: Error, CustomStringConvertible {
    let description: String
}

/// Polls `condition` every 10 ms until it holds; throws (failing the test) after `timeout` seconds.
func waitUntil(_ timeout: Double, _ what: @autoclosure () -> String, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        if Date() >= deadline { throw Timeout(description: "timed out after \(timeout)s waiting for: \(what())") }
        usleep(10_000)
    }
}

/// A fresh `/tmp/hw-XXXXXX` folder, removed with everything in it by `remove()`.
struct TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/hw-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Timeout(description: "mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: p)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file(name))
    }
}

/// The numeric entries of /proc/PID/fd, sorted; nil when the process is gone.
func openFDs(_ pid: pid_t) -> [Int]? {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
    return names.compactMap(Int.init).sorted()
}

/// What /proc/PID/fd/N links to (`socket:[123]`, `/dev/null`).
func fdTarget(_ pid: pid_t, _ fd: Int) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
}

/// /proc/PID/environ as a dictionary.
func environment(of pid: pid_t) -> [String: String] {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
    var out: [String: String] = [:]
    for entry in data.split(separator: 0) {
        let s = String(decoding: entry, as: UTF8.self)
        if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
    }
    return out
}

/// A `Key:\tvalue` line of /proc/PID/status.
func statusField(_ pid: pid_t, _ key: String) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// Fields of /proc/PID/stat after the command name: [0] is the state, [1] ppid, [2] pgrp.
func statFields(_ pid: pid_t) -> [String]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").map(String.init)
}

/// Waits for our own child `pid` to end and returns its raw wait status.
func reap(_ pid: pid_t, timeout: Double = 5) throws -> Int32 {
    var status: Int32 = 0
    var result: pid_t = 0
    try waitUntil(timeout, "pid \(pid) to exit") {
        result = waitpid(pid, &status, WNOHANG)
        return result != 0
    }
    #expect(result == pid, "waitpid(\(pid)): \(String(cString: strerror(errno)))")
    return status
}
