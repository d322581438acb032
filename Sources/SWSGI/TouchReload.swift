import CGlibcShim
import Glibc
import Posix

/// uWSGI's `touch-reload`: one inotify fd in the master's reactor, no polling. A file is watched through
/// its directory (touching, writing or replacing it by rename all count, and it may not exist yet); a
/// directory is watched itself (an entry added, removed or renamed, or the directory touched).
final class TouchReload {
    let fd: Int32
    /// inotify watch descriptor -> the names that count in that directory (nil: any event).
    private var watches: [Int32: (path: String, names: Set<String>?)] = [:]
    /// A watched file's inode and mtime when last seen: uWSGI reloads when the mtime changes, so the
    /// IN_ATTRIB and IN_CLOSE_WRITE of one touch(1), or a chmod, are not two reloads or one.
    private var seen: [String: [Int]] = [:]

    /// nil when `paths` is empty; throws when inotify itself fails. A path whose directory is missing is
    /// logged and skipped: like uWSGI, nothing there can ever trigger.
    init?(paths: [String]) throws {
        guard !paths.isEmpty else { return nil }
        fd = try syscall("inotify_init1") { shim_inotify_init() }
        for raw in paths {
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
            let wd = inotify_add_watch(fd, dir, mask)
            if wd < 0 {
                ServerLog.line("touch-reload \(raw): inotify_add_watch(\(dir)): \(errnoText(errno)); it cannot trigger")
                continue
            }
            if let name {
                let full = dir == "/" ? "/" + name : dir + "/" + name
                seen[full] = TouchReload.version(full)
                var names = watches[wd]?.names ?? []
                names.insert(name)
                watches[wd] = (dir, names)
            } else {
                watches[wd] = (dir, nil)
            }
        }
    }

    deinit { close(fd) }

    /// [inode, mtime seconds, mtime nanoseconds], nil when the file cannot be stat'ed (then every event counts).
    private static func version(_ path: String) -> [Int]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
    }

    /// Drains the pending events: the first watched path among them, or nil when none counts.
    func changed() -> String? {
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
                    let now = TouchReload.version(full)
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
