import Glibc
import Posix

/// Rewrite mode: each generation binds a private path beside the public one, which hupwatch points at a
/// generation once it is ready. The public path is never missing and no generation ever removes it.
extension Runner {

    /// `.NAME.gN` beside the public path: the path generation N binds.
    static func privatePath(_ publicPath: String, generation n: Int) -> String {
        let (dir, name) = splitPath(publicPath)
        return dir + "/." + name + ".g\(n)"
    }

    /// The public path must be free for us to point: absent, or a stale socket nobody listens on.
    static func checkPublicPath(_ path: String) throws {
        if let problem = SocketPath.problem(privatePath(path, generation: 999_999)) {
            throw SetupError(message: "rewrite mode: each generation's private path would not fit (\(problem)); use a shorter path, or --no-rewrite")
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw SetupError(message: "\(path) exists and is not a socket; refusing to replace it")
        }
        if UnixSocket.hasLiveListener(path) {
            throw SetupError(message: "\(path): a live listener already serves this path; refusing to steal it")
        }
    }

    /// Makes room for a generation's private path: a stale socket left by an earlier run is removed;
    /// anything else (a live listener, a file) is a reason not to start. Nil when the path is free.
    static func clearPrivatePath(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { return "\(path) exists and is not a socket; refusing to replace it" }
        if UnixSocket.hasLiveListener(path) { return "\(path): a live listener already serves this path" }
        unlink(path)
        return nil
    }

    /// A reaped generation's private path, if it left it behind (uWSGI does): removed once nothing listens
    /// there, so a long-lived hupwatch does not collect one dead socket per reload.
    func removePrivatePath(_ n: Int) {
        guard let path = privatePaths.removeValue(forKey: n) else { return }
        if UnixSocket.inode(atPath: path) != nil && !UnixSocket.hasLiveListener(path) { unlink(path) }
    }

    /// Points the public path at generation n's own listener, atomically (link to a temporary name, then
    /// rename over the public path): clients always find a listening socket there. On a rollback the path
    /// already leads to the serving generation and only needs checking.
    func publish(_ n: Int, guard g: SocketGuard) {
        guard let r = rewrite else { return }
        if servedInode[n] != nil {
            if let line = g.putBack() { log(line) }
            return
        }
        guard let privatePath = privatePaths[n], let ino = UnixSocket.inode(atPath: privatePath) else {
            log("generation \(n) is ready but no socket is at its path \(privatePaths[n] ?? "?"); \(r.path) is left as it is")
            return
        }
        let tmp = splitPath(r.path).directory + "/." + splitPath(r.path).name + ".hupwatch-new"
        unlink(tmp)
        guard link(privatePath, tmp) == 0 else {
            log("cannot point \(r.path) at generation \(n): link(\(privatePath)): \(errnoText(errno))")
            return
        }
        guard rename(tmp, r.path) == 0 else {
            log("cannot point \(r.path) at generation \(n): rename: \(errnoText(errno))")
            unlink(tmp)
            return
        }
        servedInode[n] = ino
        publishedInode = ino
        g.trackCurrentPath()
        debug("\(r.path) now leads to generation \(n) (\(privatePath))")
    }
}
