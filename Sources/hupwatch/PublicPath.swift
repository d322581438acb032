import Glibc
import Posix
import ReloadCore

/// Rewrite mode's hands: each generation binds a private path beside the public one, and the core has the
/// public path pointed at a generation once it is ready (`.publish`), checked on a rollback (`.putBack`),
/// and each private path removed when its generation is gone (`.removePrivate`). Whatever hupwatch did
/// not put at the public path (a file, a symlink, a folder, another server's listener) is never replaced.
final class PublicPath {
    let path: String
    let directory: String
    let name: String
    /// Inodes of the listeners hupwatch put at the path, plus a stale socket found there at start: the
    /// only things at the path it may replace.
    private var ours: Set<ino_t> = []
    /// Each generation's listener inode, once published (its listen queue is read through it).
    private(set) var publishedInode: [Int: ino_t] = [:]

    init(path: String) {
        self.path = path
        (directory, name) = splitPath(path)
    }

    /// `.NAME.gN` beside the public path: the path generation N binds.
    func privatePath(_ n: Int) -> String { directory + "/." + name + ".g\(n)" }
    private var scratch: String { directory + "/." + name + ".hupwatch-new" }

    /// At start, with the path's lock held: the public path must be free for us to point (absent, or a
    /// stale socket nobody listens on), and names an earlier hupwatch killed by SIGKILL left are removed.
    func prepare(log: (String) -> Void) throws {
        if let problem = SocketPath.problem(privatePath(999_999)) {
            throw Runner.SetupError(message: "rewrite mode: each generation's private path would not fit (\(problem)); use a shorter path, or --no-rewrite")
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw Runner.SetupError(message: "\(path) exists and is not a socket (it is \(describe(st.st_mode & S_IFMT))); refusing to replace it")
            }
            if UnixSocket.hasLiveListener(path) {
                throw Runner.SetupError(message: "\(path): a live listener already serves this path; refusing to steal it")
            }
            ours.insert(st.st_ino)
        }
        // We hold the lock: every private path here is an earlier hupwatch's.
        let prefix = "." + name + ".g"
        for entry in directoryEntries(directory) where entry.hasPrefix(prefix) && Int(entry.dropFirst(prefix.count)) != nil {
            let p = directory + "/" + entry
            guard UnixSocket.inode(atPath: p) != nil else { continue }
            if UnixSocket.hasLiveListener(p) {
                log("warning: \(p) is left from an earlier hupwatch and still has a listener (an orphaned server?); left as it is")
            } else {
                unlink(p)
                log("removed \(p), left by an earlier hupwatch")
            }
        }
        if let problem = clearScratchName(scratch) { throw Runner.SetupError(message: problem) }
    }

    /// Makes room for generation n's private path: a stale socket is removed; anything else (a live
    /// listener, a file) is a reason not to start it. Nil when the path is free.
    func clearPrivatePath(_ n: Int) -> String? {
        let p = privatePath(n)
        var st = stat()
        guard lstat(p, &st) == 0 else { return nil }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { return "\(p) exists and is not a socket (it is \(describe(st.st_mode & S_IFMT))); refusing to replace it" }
        if UnixSocket.hasLiveListener(p) { return "\(p): a live listener already serves this path" }
        unlink(p)
        return nil
    }

    /// Generation n is gone: its private path goes, whatever still holds the listener (its group was just
    /// sent SIGKILL). Only a socket is removed: a file someone put there is not ours.
    func removePrivatePath(_ n: Int) {
        publishedInode[n] = nil
        let p = privatePath(n)
        if UnixSocket.inode(atPath: p) != nil { unlink(p) }
    }

    /// Points the public path at generation n's own listener, atomically: clients always find a listener.
    func publish(_ n: Int) -> PublishResult {
        guard let ino = UnixSocket.inode(atPath: privatePath(n)) else {
            return .failed("no socket is at its path \(privatePath(n))")
        }
        ours.insert(ino)
        if let problem = replaceWithLink(path, to: privatePath(n), scratch: scratch, replaceable: replaceable) {
            return .failed(problem)
        }
        publishedInode[n] = ino
        return .ok
    }

    /// The path must lead to serving generation n (a rollback): if something of ours replaced it, point it
    /// back; a path gone missing is the guard's to restore. Nil when nothing needed doing, else a log line.
    func putBack(_ n: Int) -> String? {
        guard let ino = publishedInode[n] else { return nil }
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        if st.st_ino == ino && (st.st_mode & S_IFMT) == S_IFSOCK { return nil }
        if let problem = replaceWithLink(path, to: privatePath(n), scratch: scratch, replaceable: replaceable) {
            return "cannot put \(path) back on generation \(n): \(problem)"
        }
        return "put \(path) back on generation \(n)'s listener"
    }

    private func replaceable(_ type: mode_t, _ inode: ino_t) -> Bool { type == S_IFSOCK && ours.contains(inode) }

    /// At exit: the public path goes only while it leads to a listener we put there.
    func removeAtExit() {
        if let ino = UnixSocket.inode(atPath: path), ours.contains(ino) { unlink(path) }
        for n in Array(publishedInode.keys) { removePrivatePath(n) }
        if UnixSocket.inode(atPath: scratch) != nil { unlink(scratch) }
    }
}

/// The names in a folder (nothing on error).
func directoryEntries(_ dir: String) -> [String] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
