import Foundation
import Glibc

/// A fresh private folder `/tmp/hwt-XXXXXX` per test: short, so a socket path in it stays far below the
/// 107 bytes of sun_path. `remove()` deletes it with everything in it.
public final class TempDir: @unchecked Sendable {
    public static let prefix = "/tmp/hwt-"
    public let path: String

    public init() throws {
        sweepLeftoversOfDeadRunsOnce()
        var template = Array((TempDir.prefix + "XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(errnoText(errno))") }
        path = String(cString: p)
        // Readable by others: supervisors and nginx workers may run as another user.
        chmod(path, 0o755)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// The file's text, "" when it does not exist.
    public func read(_ name: String) -> String { readIfExists(name) ?? "" }

    /// The file's text, nil when it does not exist.
    public func readIfExists(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }

    public func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

    /// Writes `text` (creating parent folders) with `mode`, or 0755 when `executable`, else 0644.
    public func write(_ name: String, _ text: String, mode: Int? = nil, executable: Bool = false) throws {
        try write(name, bytes: Array(text.utf8), mode: mode, executable: executable)
    }

    public func write(_ name: String, bytes: [UInt8], mode: Int? = nil, executable: Bool = false) throws {
        let target = file(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        guard chmod(target, mode_t(mode ?? (executable ? 0o755 : 0o644))) == 0 else {
            throw TestFailure("chmod \(target): \(errnoText(errno))")
        }
    }

    public func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: file(name), withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Every pid of this test ever found in /proc by its marker (see `markedProcesses`). Another test in this
    /// process may have made it a child subreaper: orphans of our supervisors then end as our zombies, so
    /// tear-down reaps these pids, each by its own number.
    private let lock = NSLock()
    private var seenPids: Set<pid_t> = []
    public func seen(_ pids: [pid_t]) { lock.withLock { seenPids.formUnion(pids) } }
    public func reapSeen() {
        for pid in lock.withLock({ seenPids }) {
            var st: Int32 = 0
            _ = waitpid(pid, &st, WNOHANG)
        }
    }
}

/// A fresh temp folder's path (the worker-management tests' spelling); the caller removes it.
public func makeTempDir() throws -> String {
    let d = try TempDir()
    return d.path
}

public func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

public func fileInode(_ path: String) -> UInt64? {
    var st = stat()
    return lstat(path, &st) == 0 ? UInt64(st.st_ino) : nil
}
