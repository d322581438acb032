import CGlibcShim
import Glibc

/// An exclusive lock on a file beside a socket path: whoever holds it is the one process that binds,
/// points and removes names at that path. Taken before anything is bound; released by closing (or by the
/// kernel when the holder dies, so a SIGKILLed holder never leaves a stale lock).
public final class PathLock {
    public let path: String
    private let fd: Int32
    private let inode: ino_t

    /// Nil when another process holds the lock. Throws on any other failure (a symlink or a folder at
    /// `path`, a folder we cannot write).
    public static func acquire(_ path: String) throws -> PathLock? {
        // The holder removes the file when it leaves: a lock taken on a file just unlinked is no lock, so
        // after locking, the file must still be the one at the path.
        for _ in 0..<16 {
            let fd = try syscall("open(\(path))") { shim_open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            if shim_flock_exclusive_nonblocking(fd) != 0 {
                let e = errno
                close(fd)
                if e == EWOULDBLOCK || e == EAGAIN { return nil }
                throw SyscallError("flock(\(path))", errno: e)
            }
            var mine = stat(), there = stat()
            if fstat(fd, &mine) == 0, lstat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev {
                // hupwatch never writes its lock file: one with content is someone else's, not to be
                // locked (and later removed) as ours.
                if (mine.st_mode & S_IFMT) != S_IFREG || mine.st_size != 0 {
                    close(fd)
                    throw SyscallError("open(\(path)): exists and is not an empty lock file", errno: EEXIST)
                }
                return PathLock(path: path, fd: fd, inode: mine.st_ino)
            }
            close(fd)
        }
        throw SyscallError("flock(\(path)): the lock file keeps being replaced", errno: EAGAIN)
    }

    private init(path: String, fd: Int32, inode: ino_t) {
        self.path = path
        self.fd = fd
        self.inode = inode
    }

    /// Removes the file (while still holding the lock, and only if it is still ours), then unlocks.
    public func release() {
        var st = stat()
        if lstat(path, &st) == 0, st.st_ino == inode, st.st_size == 0 { unlink(path) }
        close(fd)
    }
}
