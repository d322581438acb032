import CGlibcShim
import Glibc

/// Unix stream sockets by path. Every fd is CLOEXEC; a leading '@' names the abstract namespace.
public enum UnixSocket {
    /// The longest path sun_path holds (107 bytes on Linux).
    public static let maxPathBytes = Int(shim_sun_path_max())

    /// Nil when `path` fits in sun_path, else why it does not.
    public static func stream(nonBlocking: Bool = false) throws -> FileDescriptor {
        let type = SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | (nonBlocking ? SOCK_NONBLOCK.rawValue : 0)
        return FileDescriptor(adopting: try syscall("socket") { shim_socket(AF_UNIX, Int32(type), 0) })
    }

    /// A non-blocking datagram socket, bound to `address` when given (sd_notify's transport).
    public static func datagram(boundTo address: String? = nil) throws -> FileDescriptor {
        let type = SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue
        let fd = FileDescriptor(adopting: try syscall("socket") { shim_socket(AF_UNIX, Int32(type), 0) })
        if let address { try syscall("bind", address) { shim_bind_unix(fd.raw, address) } }
        return fd
    }

    /// Sends one datagram to `address`; sd_notify senders ignore failures, so this reports them.
    public static func send(datagram text: String, to address: String, from fd: Int32) throws {
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBytes { b in
            _ = try syscall("sendto", address) { shim_sendto_unix(fd, b.baseAddress, b.count, address) }
        }
    }

    /// Binds and listens at `path`. A stale socket file (nobody accepting) is replaced; a path a live
    /// listener serves is never stolen (EADDRINUSE); anything that is not a socket is left alone (EEXIST).
    public static func listen(path: String, backlog: Int32, mode: mode_t? = nil) throws -> FileDescriptor {
        if path.first != "@" {
            var st = stat()
            if lstat(path, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw SyscallError("bind", errno: EEXIST, context: path) }
                if hasLiveListener(path) { throw SyscallError("bind", errno: EADDRINUSE, context: path) }
                try syscall("unlink", path) { unlink(path) }
            }
        }
        let fd = try stream()
        try syscall("bind", path) { shim_bind_unix(fd.raw, path) }
        if let mode, path.first != "@" { try syscall("chmod", path) { chmod(path, mode) } }
        try syscall("listen", path) { Glibc.listen(fd.raw, backlog) }
        return fd
    }

    /// Connects to `path`. Non-blocking sockets report a full backlog as EAGAIN.
    public static func connect(path: String, nonBlocking: Bool = false) throws -> FileDescriptor {
        let fd = try stream(nonBlocking: nonBlocking)
        try syscall("connect", path) { shim_connect_unix(fd.raw, path) }
        return fd
    }

    /// True when a listener is bound and listening at `path`, even one whose backlog is full (EAGAIN):
    /// such a path belongs to a live server and must not be taken over. Not proof that it accepts.
    public static func hasLiveListener(_ path: String) -> Bool {
        guard let fd = try? connect(path: path, nonBlocking: true) else { return errno == EAGAIN }
        _ = fd
        return true
    }

    /// The inode of the socket file at `path`, nil if absent or not a socket.
    public static func inode(atPath path: String) -> ino_t? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return st.st_ino
    }

    /// The inode of an open socket.
    public static func inode(of fd: Int32) throws -> ino_t {
        var st = stat()
        try syscall("fstat") { fstat(fd, &st) }
        return st.st_ino
    }

    /// Connections waiting in a listening socket's accept queue, read from the kernel (sock_diag).
    public static func listenQueue(inode: ino_t) throws -> (queued: Int, backlog: Int) {
        var maxBacklog: UInt32 = 0
        let q = try syscall("sock_diag(UNIX_DIAG_RQLEN)") { shim_unix_listen_queue(UInt32(truncatingIfNeeded: inode), &maxBacklog) }
        return (Int(q), Int(maxBacklog))
    }

    /// Connections waiting on the listener bound to the socket file with inode `fileInode` (what
    /// `inode(atPath:)` returned), even after the path has moved on to another socket. Nil when no
    /// listener is bound to that file any more.
    public static func listenQueue(fileInode: ino_t) throws -> Int? {
        let q = shim_unix_listen_queue_by_file_inode(UInt(fileInode))
        if q >= 0 { return Int(q) }
        if errno == ENOENT { return nil }
        throw SyscallError("sock_diag(UDIAG_SHOW_VFS)")
    }

    /// Whether the listener our connected socket `fd` reached has accepted it (taken it off its queue).
    /// False while it waits in the queue; throws when the connection was reset (the listener went away).
    public static func isAccepted(_ fd: Int32) throws -> Bool {
        let r = shim_unix_connection_accepted(fd)
        if r < 0 { throw SyscallError("sock_diag(UDIAG_SHOW_PEER)") }
        return r == 1
    }

    /// Receives one datagram without blocking, with the kernel-checked pid of its sender (SO_PASSCRED must
    /// be on). Nil when none is waiting.
    public static func receive(from fd: Int32, into buffer: inout [UInt8]) throws -> (count: Int, sender: pid_t)? {
        var sender: pid_t = 0
        let n = buffer.withUnsafeMutableBytes { shim_recv_with_sender(fd, $0.baseAddress, $0.count, &sender) }
        if n >= 0 { return (n, sender) }
        if errno == EAGAIN || errno == EINTR { return nil }
        throw SyscallError("recvmsg")
    }

    /// Asks the kernel to attach each sender's credentials to datagrams received on `fd`.
    public static func passCredentials(_ fd: Int32) throws {
        try syscall("setsockopt(SO_PASSCRED)") { shim_enable_passcred(fd) }
    }

    /// Accepts one connection (CLOEXEC); nil when none is waiting on a non-blocking listener.
    public static func accept(_ listener: Int32, nonBlocking: Bool = false) throws -> FileDescriptor? {
        let flags = SOCK_CLOEXEC.rawValue | (nonBlocking ? SOCK_NONBLOCK.rawValue : 0)
        while true {
            let fd = shim_accept4(listener, Int32(flags))
            if fd >= 0 { return FileDescriptor(adopting: fd) }
            switch errno {
            case EINTR: continue
            case EAGAIN, ECONNABORTED: return nil
            default: throw SyscallError("accept4")
            }
        }
    }
}

/// The directory part and last component of a path (`/tmp/a.sock` -> `/tmp`, `a.sock`).
public func splitPath(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let dir = String(path[..<slash])
    return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
}

/// True when `path` names an existing directory.
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// bind(2) of a Unix stream socket to a path (for callers that manage the steps themselves).
public func shimBind(_ fd: Int32, _ path: UnsafePointer<CChar>) -> Int32 {
    shim_bind_unix(fd, path)
}

/// Connections waiting in a TCP listener's accept queue (TCP_INFO), nil if the kernel will not say.
public func tcpListenQueue(_ fd: Int32) -> (queued: Int, backlog: Int)? {
    var maxBacklog: UInt32 = 0
    let q = shim_tcp_listen_queue(fd, &maxBacklog)
    return q < 0 ? nil : (Int(q), Int(maxBacklog))
}
