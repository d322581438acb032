import Glibc
import Posix
import SWSGIConfig

/// The socket workers accept on, and whether swsgi owns its path (and so removes it at exit).
struct Listener {
    let fd: Int32
    /// The socket's own (sockfs) inode: what sock_diag reports queues by.
    let inode: ino_t
    /// The inode of the file at `ownedPath` when we bound it (a different number from `inode`).
    var pathInode: ino_t? = nil
    /// Set when swsgi bound a Unix path itself: removed at exit only while it is still this inode.
    let ownedPath: String?
    let isUnix: Bool
    let description: String

    /// systemd socket activation (LISTEN_FDS with LISTEN_PID = our pid) wins; else --socket / --http-socket.
    /// The listener is non-blocking: several workers wake for one connection and the losers must not block.
    static func open(_ o: ServerOptions, environment env: [String]) throws -> Listener {
        let l = try openBlocking(o, environment: env)
        let flags = fcntl(l.fd, F_GETFL)
        guard flags >= 0, fcntl(l.fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SyscallError("fcntl(O_NONBLOCK)", context: l.description) }
        return l
    }

    private static func openBlocking(_ o: ServerOptions, environment env: [String]) throws -> Listener {
        if lookup("LISTEN_PID", in: env) == String(getpid()), let n = lookup("LISTEN_FDS", in: env).flatMap(Int.init), n >= 1 {
            var st = stat()
            guard fstat(3, &st) == 0 else { throw SWSGIError("LISTEN_FDS=\(n) but fd 3 is not open: \(errnoText(errno))") }
            _ = fcntl(3, F_SETFD, FD_CLOEXEC)
            var domain = sockaddr()
            var len = socklen_t(MemoryLayout<sockaddr>.size)
            getsockname(3, &domain, &len)
            return Listener(fd: 3, inode: st.st_ino, ownedPath: nil, isUnix: domain.sa_family == sa_family_t(AF_UNIX),
                            description: "fd 3 from LISTEN_FDS (\(lookup("LISTEN_FDNAMES", in: env) ?? "unnamed"))")
        }
        if let path = o.socket { return try bindUnix(path, o) }
        if let addr = o.httpSocket { return try bindTCP(addr, o) }
        throw SWSGIError("no listener: give --socket PATH or --http-socket HOST:PORT, or start under socket activation (LISTEN_FDS)")
    }

    /// Binds a temporary name beside `path` and renames it into place, so during a rebind clients
    /// always find a listener at the path (the old one or the new one), never nothing.
    static func bindUnix(_ path: String, _ o: ServerOptions) throws -> Listener {
        let (dir, name) = splitPath(path)
        guard isDirectory(dir) else { throw SWSGIError("--socket \(path): folder \(dir) does not exist") }
        var tmp = dir + "/." + name + ".swsgi-\(getpid())"
        if SocketPath.problem(tmp) != nil { tmp = path }
        unlink(tmp)
        if tmp == path { unlink(path) }
        let sock = try UnixSocket.stream()
        try syscall("bind", path) { tmp.withCString { shimBind(sock.raw, $0) } }
        if let mode = o.chmodSocket { try syscall("chmod", path) { chmod(tmp, mode_t(mode)) } }
        if let owner = o.chownSocket { try chown(tmp, owner) }
        try syscall("listen", path) { Glibc.listen(sock.raw, Int32(o.listenBacklog)) }
        let pathInode = UnixSocket.inode(atPath: tmp)
        if tmp != path { try syscall("rename", path) { rename(tmp, path) } }
        let inode = try UnixSocket.inode(of: sock.raw)
        return Listener(fd: sock.release(), inode: inode, pathInode: pathInode, ownedPath: path, isUnix: true, description: "unix:\(path)")
    }

    static func chown(_ path: String, _ owner: String) throws {
        let parts = owner.split(separator: ":", maxSplits: 1).map(String.init)
        guard let pw = getpwnam(parts[0]) else { throw SWSGIError("--chown-socket: no user '\(parts[0])'") }
        var gid = pw.pointee.pw_gid
        if parts.count == 2 {
            guard let gr = getgrnam(parts[1]) else { throw SWSGIError("--chown-socket: no group '\(parts[1])'") }
            gid = gr.pointee.gr_gid
        }
        try syscall("chown", path) { Glibc.chown(path, pw.pointee.pw_uid, gid) }
    }

    static func bindTCP(_ a: HTTPSocketAddress, _ o: ServerOptions) throws -> Listener {
        guard !a.host.contains(":") else { throw SWSGIError("--http-socket \(a): IPv6 addresses are not supported yet") }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = a.port.bigEndian
        let host = a.host.isEmpty ? "0.0.0.0" : (a.host == "localhost" ? "127.0.0.1" : a.host)
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { throw SWSGIError("--http-socket \(a): '\(a.host)' is not an IPv4 address") }
        let fd = try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        do {
            try syscall("bind", "\(a)") { withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } }
            try syscall("listen", "\(a)") { Glibc.listen(fd, Int32(o.listenBacklog)) }
        } catch {
            close(fd)
            throw error
        }
        return Listener(fd: fd, inode: try UnixSocket.inode(of: fd), ownedPath: nil, isUnix: false, description: "http:\(a)")
    }

    /// Removes the socket path only if it is still the inode we bound: a newer instance may have
    /// bound the same path since, and its socket must survive our exit.
    func vacuum() {
        guard let path = ownedPath, let mine = pathInode else { return }
        if UnixSocket.inode(atPath: path) == mine { unlink(path) }
    }
}
