import Glibc
import Posix

/// Keeps a Unix socket path pointing at the listener the serving generation uses.
///
/// Servers such as gunicorn unlink their socket path at exit without checking it is still theirs,
/// deleting the path a newer generation bound. The guard keeps a hidden hard link to the serving
/// inode and, the moment inotify reports the path gone, links it back (link(2) never clobbers a
/// path someone recreated meanwhile).
///
/// The link's name is stable, `.NAME.hupwatch` beside the socket, so nginx can list it as a `backup`
/// upstream: while a new generation rebinds the path (unlink, bind, listen: a window no wrapper can
/// close), the link still leads to the serving listener and nginx retries a failed connect there.
final class SocketGuard {
    let path: String
    let name: String
    let hiddenPath: String
    let watch: DirectoryWatch
    /// What the guard does when the path vanishes.
    enum State: Equatable {
        /// Puts the path back on this listener.
        case following(ino_t)
        /// A generation is (re)binding the path: putting the old one back would break its bind.
        /// The inode the path led to is kept for a rollback.
        case holding(ino_t?)
        /// Nothing serves, or hupwatch is stopping: a restored path would lead to a dead listener.
        case off
    }
    private(set) var state: State = .holding(nil)

    /// The inode of the listener the guard keeps (or last kept) the path on.
    var inode: ino_t? {
        switch state {
        case .following(let i): return i
        case .holding(let i): return i
        case .off: return nil
        }
    }

    func hold() { state = .holding(inode) }
    func turnOff() { state = .off }

    init(path: String) throws {
        self.path = path
        let (dir, name) = splitPath(path)
        self.name = name
        self.hiddenPath = dir + "/." + name + ".hupwatch"
        self.watch = try DirectoryWatch(directory: dir)
        // One hupwatch guards a path (it holds the path's lock): a link left by an earlier one (killed by
        // SIGKILL) is stale. Anything else at that name is not ours to remove.
        var st = stat()
        if lstat(hiddenPath, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw Runner.SetupError(message: "\(hiddenPath) exists and is \(describe(st.st_mode & S_IFMT)), not hupwatch's link to a socket; refusing to replace it")
            }
            unlink(hiddenPath)
        }
        // The name the link is replaced through: a stale link is cleared, a file someone keeps there refused.
        if let problem = clearScratchName(hiddenPath + ".tmp") { throw Runner.SetupError(message: problem) }
    }

    deinit { removeLink() }

    /// Removes the hidden link (at exit: deinit does not run when the process exits).
    func removeLink() { if UnixSocket.inode(atPath: hiddenPath) != nil { unlink(hiddenPath) } }

    /// Links the hidden name to whatever listener is at the path now. Returns the inode, nil if none.
    @discardableResult
    func trackCurrentPath() -> ino_t? {
        guard let ino = UnixSocket.inode(atPath: path) else { return nil }
        if ino == inode {
            state = .following(ino)
            return ino
        }
        // Replace atomically (link a temporary name, rename it over): the backup route never vanishes.
        let tmp = hiddenPath + ".tmp"
        guard clearScratchName(tmp) == nil, link(path, tmp) == 0 else {
            state = .holding(nil)
            return nil
        }
        guard rename(tmp, hiddenPath) == 0 else {
            unlink(tmp)  // our link: link(2) above made it
            state = .holding(nil)
            return nil
        }
        state = .following(ino)
        return ino
    }

    /// Points the path back at the tracked inode (a rollback after a failed generation rebound it).
    /// Returns a description of what it did, nil when the path was already right.
    func putBack() -> String? {
        guard let inode else { return nil }
        state = .following(inode)
        let now = UnixSocket.inode(atPath: path)
        if now == inode { return nil }
        if now == nil { return restoreIfMissing() }
        // Replace atomically (a client never sees the path missing), and only a socket: the generations
        // rebind this path, so a socket there is one of theirs; a file or a symlink is someone else's.
        if let problem = replaceWithLink(path, to: hiddenPath, scratch: hiddenPath + ".tmp", replaceable: { type, _ in type == S_IFSOCK }) {
            return "cannot restore \(path): \(problem)"
        }
        return "put \(path) back on the serving generation's listener"
    }

    /// Called after inotify events: restores the path if it vanished while not paused.
    func handleEvents() throws -> [String] {
        let changes = try watch.changes()
        guard case .following = state else { return [] }
        let relevant = changes.contains { $0 == .removed(name) || $0 == .overflow }
        guard relevant else { return [] }
        return restoreIfMissing().map { [$0] } ?? []
    }

    /// Links the path back to the kept listener if it is missing (link(2) never clobbers).
    func restoreIfMissing() -> String? {
        guard inode != nil else { return nil }
        let started = monotonicNanoseconds()
        var st = stat()
        if lstat(path, &st) == 0 { return nil }
        guard link(hiddenPath, path) == 0 else {
            return errno == EEXIST ? nil : "cannot restore \(path): link: \(errnoText(errno))"
        }
        let micros = (monotonicNanoseconds() - started) / 1000
        return "socket path \(path) was removed; restored it to the serving listener (link took \(micros)us)"
    }
}
