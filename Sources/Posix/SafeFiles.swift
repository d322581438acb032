import CGlibcShim
import Glibc

/// Files and names an attacker sharing a folder cannot predict, pre-create or redirect.

/// `count` bytes from the kernel's CSPRNG.
public func randomBytes(_ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = out.withUnsafeMutableBytes { shim_getrandom($0.baseAddress! + got, count - got) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SyscallError("getrandom")
        }
        got += n
    }
    return out
}

/// 16 lowercase hex characters (64 random bits): a temp-name suffix nobody can guess ahead.
public func unpredictableSuffix() throws -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: try randomBytes(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
}

/// Creates a new file, failing if anything (a file, a planted symlink) is already at `path`.
public func createExclusively(_ path: String, mode: mode_t = 0o644) throws -> FileDescriptor {
    FileDescriptor(adopting: try syscall("open(O_EXCL)", path) {
        shim_open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, Int32(mode))
    })
}

/// Writes `content` to `path` through a temp file with an unpredictable name created with
/// O_EXCL|O_NOFOLLOW, then renamed into place (rename replaces a symlink at `path`, never follows it).
/// A planted file or symlink at a guessable temp name can neither be truncated nor followed.
public func writeFileSafely(_ path: String, _ content: String, mode: mode_t = 0o644) throws {
    let (dir, name) = splitPath(path)
    let tmp = dir + "/." + name + ".tmp-" + (try unpredictableSuffix())
    do {
        let fd = try createExclusively(tmp, mode: mode)
        try fd.write(content)
        try syscall("rename", path) { rename(tmp, path) }
    } catch {
        unlink(tmp)
        throw error
    }
}

/// rename(2) that never replaces: EEXIST when something appeared at `to`.
public func renameNoReplace(_ from: String, _ to: String) throws {
    try syscall("renameat2(RENAME_NOREPLACE)", to) { shim_rename_noreplace(from, to) }
}

/// What is at a path, without following a symlink there.
public enum PathKind: Equatable, Sendable {
    case missing, socket, regularFile, directory, symlink, other
}

public func pathKind(_ path: String) throws -> PathKind {
    var st = stat()
    if lstat(path, &st) != 0 {
        if errno == ENOENT { return .missing }
        throw SyscallError("lstat", context: path)
    }
    switch st.st_mode & S_IFMT {
    case S_IFSOCK: return .socket
    case S_IFREG: return .regularFile
    case S_IFDIR: return .directory
    case S_IFLNK: return .symlink
    default: return .other
    }
}

/// Opens `path` (relative, as from a URL) beneath the directory `dirfd` in one kernel step
/// (openat2 RESOLVE_BENEATH): `..` above it, absolute symlinks and symlinks leading out all fail
/// with EXDEV, and there is no window between checking the path and opening it.
/// Kernels without openat2 (before 5.6) get an equivalent walk: one openat per component with
/// O_NOFOLLOW, so no symlink is followed at all and `..` is refused.
public func openBeneath(_ dirfd: Int32, _ path: String, flags: Int32) throws -> FileDescriptor {
    let fd = shim_openat2_beneath(dirfd, path, flags | O_CLOEXEC)
    if fd >= 0 { return FileDescriptor(adopting: fd) }
    let e = errno
    guard e == ENOSYS else { throw SyscallError("openat2(RESOLVE_BENEATH)", errno: e, context: path) }
    let parts = path.split(separator: "/").map(String.init)
    guard !parts.isEmpty, !parts.contains("..") else { throw SyscallError("openat", errno: EXDEV, context: path) }
    var current = try syscall("openat", path) { shim_fcntl_int(dirfd, F_DUPFD_CLOEXEC, 0) }
    for (i, part) in parts.enumerated() {
        let last = i == parts.count - 1
        let f = last ? (flags | O_NOFOLLOW | O_CLOEXEC) : (shim_O_PATH() | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        let next = openat(current, part, f)
        let err = errno
        close(current)
        guard next >= 0 else { throw SyscallError("openat", errno: err, context: path) }
        current = next
    }
    return FileDescriptor(adopting: current)
}

/// Removes the pid file at `path` only while it still names `pid` (the text we wrote, `PID\n`): another
/// process (a newer instance, an operator, a supervisor) that rewrote it, in place or by rename, keeps it.
public func removePidFileIfOurs(_ path: String, pid: pid_t) {
    if (try? readTextFile(path, maxBytes: 64)) == "\(pid)\n" { unlink(path) }
}
