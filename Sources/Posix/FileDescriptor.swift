import CGlibcShim
import Glibc

/// An owned file descriptor: closed exactly once, when the value goes away.
public struct FileDescriptor: ~Copyable {
    public let raw: Int32

    public init(adopting raw: Int32) { self.raw = raw }

    deinit { Glibc.close(raw) }

    /// Gives up ownership without closing.
    public consuming func release() -> Int32 {
        let r = raw
        discard self
        return r
    }

    public func setNonBlocking(_ on: Bool = true) throws {
        let fl = try syscall("fcntl(F_GETFL)") { shim_fcntl_int(raw, F_GETFL, 0) }
        let nf = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK
        try syscall("fcntl(F_SETFL)") { shim_fcntl_int(raw, F_SETFL, nf) }
    }

    /// A CLOEXEC duplicate at `minimum` or above.
    public func duplicate(atLeast minimum: Int32 = 0) throws -> FileDescriptor {
        FileDescriptor(adopting: try syscall("fcntl(F_DUPFD_CLOEXEC)") { shim_fcntl_int(raw, F_DUPFD_CLOEXEC, minimum) })
    }

    /// Reads what is available; 0 means end of file. EAGAIN is returned as nil.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        while true {
            let n = Glibc.read(raw, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN { return nil }
            throw SyscallError("read", context: nil)
        }
    }

    /// Writes every byte (blocking descriptors) or as many as fit (non-blocking); returns the count written.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        var done = 0
        while done < bytes.count {
            let n = shim_send_or_write(raw, bytes.baseAddress! + done, bytes.count - done)
            if n >= 0 { done += n; continue }
            if errno == EINTR { continue }
            if errno == EAGAIN { break }
            throw SyscallError("write")
        }
        return done
    }

    @discardableResult
    public func write(_ bytes: [UInt8]) throws -> Int {
        try bytes.withUnsafeBytes { (b) throws -> Int in try write(b) }
    }

    @discardableResult
    public func write(_ text: String) throws -> Int {
        try write(Array(text.utf8))
    }
}

/// send(MSG_NOSIGNAL) on sockets (a peer that went away must not SIGPIPE us), write(2) elsewhere.
@inline(__always)
func shim_send_or_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    let r = shim_send(fd, p, n)
    if r < 0 && errno == ENOTSOCK { return Glibc.write(fd, p, n) }
    return Int(r)
}

/// A pipe whose both ends are close-on-exec, as raw fds the caller closes.
public func makePipe(nonBlocking: Bool = false) throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    _ = try fds.withUnsafeMutableBufferPointer { p in
        try syscall("pipe2") { shim_pipe2_cloexec(p.baseAddress, nonBlocking ? 1 : 0) }
    }
    return (fds[0], fds[1])
}

/// Opens (creating or truncating) a file for writing, CLOEXEC, mode 0644.
public func openForWriting(_ path: String) throws -> FileDescriptor {
    FileDescriptor(adopting: try syscall("open", path) { shim_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) })
}

/// Writes `content` to `path` atomically (temp file + rename): readers never see half a file.
public func writeFileAtomically(_ path: String, _ content: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    do {
        // Closed before the rename: whoever sees the new file sees no fd of ours still open for it.
        let fd = try openForWriting(tmp)
        try fd.write(content)
    }
    try syscall("rename", path) { rename(tmp, path) }
}

/// A whole (small) file as text; at most `maxBytes`, read.
public func readTextFile(_ path: String, maxBytes: Int = 16 << 20) throws(SyscallError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SyscallError("open", context: path) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while out.count <= maxBytes {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SyscallError("read", context: path)
        }
        if n == 0 { return String(decoding: out, as: UTF8.self) }
        out += buf[0..<n]
    }
    throw SyscallError("read", errno: EFBIG, context: path)
}
