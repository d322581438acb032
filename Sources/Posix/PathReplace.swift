import CGlibcShim
import Glibc

/// Puts a hard link to `source` at `path` without ever destroying what is there: absent, it is created
/// (never clobbering a name made meanwhile); present and not `replaceable`, it is refused without being moved;
/// otherwise the two are swapped atomically (RENAME_EXCHANGE), the displaced file is looked at again (it may
/// have changed meanwhile), and only when `replaceable` accepts it is it removed; if not, it is swapped back. `scratch` is a name beside `path` the caller owns. Nil on success, else one line saying
/// why nothing changed.
public func replaceWithLink(_ path: String, to source: String, scratch: String,
                            replaceable: (_ type: mode_t, _ inode: ino_t) -> Bool) -> String? {
    // What is there and is not replaceable is left in place, untouched: the exchange below (which makes the look
    // and the swap one step against a concurrent writer) would move it aside for a moment, and a client connecting
    // then would reach hupwatch's link instead.
    var now = stat()
    if lstat(path, &now) == 0 && !replaceable(now.st_mode & S_IFMT, now.st_ino) {
        return "\(path) is \(describe(now.st_mode & S_IFMT)) hupwatch did not put there; refusing to replace it"
    }
    if let problem = clearScratchName(scratch) { return problem }
    guard link(source, scratch) == 0 else { return "link(\(source)): \(errnoText(errno))" }
    defer { unlink(scratch) }
    for _ in 0..<8 {
        if shim_rename_noreplace(scratch, path) == 0 { return nil }
        guard errno == EEXIST else { return "rename(\(path)): \(errnoText(errno))" }
        if shim_rename_exchange(scratch, path) != 0 {
            if errno == ENOENT { continue }  // removed between the two calls: try creating it again
            return "rename(\(path), RENAME_EXCHANGE): \(errnoText(errno))"
        }
        // `scratch` now names what was at `path`.
        var st = stat()
        let known = lstat(scratch, &st) == 0
        if known && replaceable(st.st_mode & S_IFMT, st.st_ino) { return nil }
        // Not ours: put it back where it was. Our link, back at `scratch`, goes with the defer.
        if shim_rename_exchange(scratch, path) != 0 {
            return "\(path) held \(describe(st.st_mode & S_IFMT)) that could not be swapped back (rename: \(errnoText(errno))); it is at \(scratch)"
        }
        return "\(path) is \(describe(st.st_mode & S_IFMT)) hupwatch did not put there; refusing to replace it"
    }
    return "\(path) kept changing under hupwatch; left as it is"
}

/// Makes room at a scratch name hupwatch links through (`.NAME.hupwatch-new`, `.NAME.hupwatch.tmp`): a
/// socket there is a link an earlier run left and is removed; anything else is someone's file, never
/// deleted. Nil when the name is free, else why not.
public func clearScratchName(_ scratch: String) -> String? {
    var st = stat()
    guard lstat(scratch, &st) == 0 else { return nil }
    let type = st.st_mode & S_IFMT
    guard type == S_IFSOCK else { return "\(scratch) exists and is \(describe(type)), not a link hupwatch made; refusing to replace it" }
    if unlink(scratch) != 0 && errno != ENOENT { return "unlink(\(scratch)): \(errnoText(errno))" }
    return nil
}

/// "a regular file", "a directory", ... for log lines.
public func describe(_ type: mode_t) -> String {
    switch type {
    case S_IFREG: return "a regular file"
    case S_IFDIR: return "a directory"
    case S_IFLNK: return "a symlink"
    case S_IFSOCK: return "a socket"
    case S_IFIFO: return "a FIFO"
    default: return "a device or other special file"
    }
}
