import CGlibcShim
import Glibc
import Posix

/// Files whose change reloads the workers, on one inotify fd watched by a reactor: no polling, so an idle
/// process never wakes. The master's for `touch-reload` (and `fs-reload`), each worker's for `py-autoreload`
/// (the app's module files, added as the app imports them). A file is watched through its directory
/// (touching, writing or replacing it by rename all count, and it may not exist yet); a directory is
/// watched itself (an entry added, removed or renamed, or the directory touched).
public final class ChangeWatch: @unchecked Sendable {
    public let fd: Int32
    /// Names the watch in its log lines (`touch-reload`, `py-autoreload`).
    let label: String
    /// inotify watch descriptor -> the names that count in that directory (nil: any event).
    private var watches: [Int32: (path: String, names: Set<String>?)] = [:]
    /// A watched file's inode and mtime when last seen: uWSGI reloads when the mtime changes, so the
    /// IN_ATTRIB and IN_CLOSE_WRITE of one touch(1), or a chmod, are not two reloads or one.
    private var seen: [String: [Int]] = [:]
    /// Every path added, so adding the same module files again costs a set lookup, not a stat.
    private var known: Set<String> = []
    /// Errors already logged: a full watch table (ENOSPC, fs.inotify.max_user_watches) would otherwise give a
    /// line per module file.
    private var loggedErrors: Set<Int32> = []
    /// Request threads add module files while the worker's main thread reads events.
    private let lock = RequestIOLock.make()

    /// Throws when inotify itself fails.
    public init(label: String) throws {
        self.label = label
        fd = try syscall("inotify_init1") { shim_inotify_init() }
    }

    /// `touch-reload`'s watch: nil when `paths` is empty.
    convenience init?(paths: [String], label: String) throws {
        guard !paths.isEmpty else { return nil }
        try self.init(label: label)
        add(paths)
    }

    deinit { close(fd) }

    /// Watches more paths. A path whose directory is missing (or unwatchable) is logged and skipped: like
    /// uWSGI, nothing there can ever trigger.
    public func add(_ paths: [String]) {
        lock.withLock {
            for raw in paths where known.insert(raw).inserted { addLocked(raw) }
        }
    }

    private func addLocked(_ raw: String) {
        var path = raw
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        var st = stat()
        let isDirectory = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        let dir: String, name: String?
        if isDirectory {
            (dir, name) = (path, nil)
        } else if let slash = path.lastIndex(of: "/") {
            (dir, name) = (slash == path.startIndex ? "/" : String(path[..<slash]), String(path[path.index(after: slash)...]))
        } else {
            (dir, name) = (".", path)
        }
        let mask = shim_IN_ATTRIB() | shim_IN_CLOSE_WRITE() | shim_IN_MOVED_TO() | shim_IN_CREATE()
            | (isDirectory ? shim_IN_DELETE() | shim_IN_MOVED_FROM() : 0)
        // IN_MASK_ADD: a directory watched for a file and itself keeps both masks.
        let wd = inotify_add_watch(fd, dir, mask | shim_IN_MASK_ADD())
        if wd < 0 {
            let e = errno
            if e != ENOSPC || loggedErrors.insert(e).inserted {
                let more = e == ENOSPC ? " (raise fs.inotify.max_user_watches; further paths failing so are not logged)" : ""
                ServerLog.line("\(label) \(raw): inotify_add_watch(\(dir)): \(errnoText(e)); it cannot trigger\(more)")
            }
            return
        }
        if let name {
            let full = dir == "/" ? "/" + name : dir + "/" + name
            seen[full] = ChangeWatch.version(full)
            if let w = watches[wd], w.names == nil { return }  // the whole directory counts already
            var names = watches[wd]?.names ?? []
            names.insert(name)
            watches[wd] = (dir, names)
        } else {
            watches[wd] = (dir, nil)
        }
    }

    /// [inode, mtime seconds, mtime nanoseconds], nil when the file cannot be stat'ed (then every event counts).
    private static func version(_ path: String) -> [Int]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
    }

    /// Drains the pending events: the first watched path among them, or nil when none counts.
    public func changed() -> String? {
        lock.withLock { changedLocked() }
    }

    private func changedLocked() -> String? {
        var hit: String? = nil
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return hit }
            var off = 0
            while off + 16 <= n {
                let wd = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: Int32.self) }
                let mask = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self) }
                let len = Int(buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self) })
                let name = String(decoding: buf[(off + 16)..<min(off + 16 + len, n)].prefix { $0 != 0 }, as: UTF8.self)
                off += 16 + len
                if mask & shim_IN_Q_OVERFLOW() != 0 { hit = hit ?? "(inotify queue overflow)"; continue }
                guard let w = watches[wd] else { continue }
                if let names = w.names {
                    let full = w.path == "/" ? "/" + name : w.path + "/" + name
                    guard names.contains(name) else { continue }
                    let now = ChangeWatch.version(full)
                    if now != nil, now == seen[full] { continue }
                    seen[full] = now
                    hit = hit ?? full
                } else {
                    hit = hit ?? w.path
                }
            }
        }
    }
}
