import Glibc
import Common
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
    /// Where the socket is bound until `publish()` renames it onto `ownedPath`.
    var temporaryPath: String? = nil
    /// The path held a stale socket: `publish()` may replace it.
    var replacesPath = false
    /// That stale socket's inode: `publish()` replaces only it, re-checked right before the rename.
    var staleInode: ino_t? = nil
    /// hupwatch handover: the path's live listener is our predecessor's (see `SocketPathRule`).
    var successor = false
    let isUnix: Bool
    var description: String
    /// Connections speak the uwsgi protocol (--uwsgi-socket), not HTTP.
    var speaksUwsgi = false
    /// `--vacuum false` (uWSGI's `vacuum = false`): the published path stays at exit.
    var keepsPathAtExit = false

    /// Every listener workers accept on: the sockets systemd (or hupwatch --listen) hands over through
    /// LISTEN_FDS (LISTEN_PID = our pid), and the configured ones not among them, bound here. Each keeps
    /// its protocol. Non-blocking: several workers wake for one connection and the losers must not block.
    static func openAll(_ o: ServerOptions, environment env: [String]) throws -> [Listener] {
        var opened: [Listener] = []
        do {
            for l in try openBlocking(o, environment: env) {
                opened.append(l)
                let flags = fcntl(l.fd, F_GETFL)
                guard flags >= 0, fcntl(l.fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SyscallError("fcntl(O_NONBLOCK)", context: l.description) }
            }
        } catch {
            for l in opened { l.vacuum() }
            throw error
        }
        return opened
    }

    private static func openBlocking(_ o: ServerOptions, environment env: [String]) throws -> [Listener] {
        let configured = o.listeners
        var listeners: [Listener] = []
        var bindHere = configured
        if lookup("LISTEN_PID", in: env) == String(getpid()), let n = lookup("LISTEN_FDS", in: env).flatMap(Int32.init), n >= 1 {
            let names = (lookup("LISTEN_FDNAMES", in: env) ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            for i in 0..<n {
                let fd = 3 + i
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw SWSGIError("LISTEN_FDS=\(n) but fd \(fd) is not open: \(errnoText(errno))") }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                let address = boundAddress(fd)
                let name = Int(i) < names.count && !names[Int(i)].isEmpty ? names[Int(i)] : "unnamed"
                var l = Listener(fd: fd, inode: st.st_ino, ownedPath: nil, isUnix: address.map { if case .unix = $0 { true } else { false } } ?? false,
                                 description: "fd \(fd) from LISTEN_FDS (\(name))")
                if configured.count <= 1 {
                    // One configured listener (or none): every inherited socket speaks its protocol, whatever its address.
                    l.speaksUwsgi = configured.first?.uwsgiProtocol ?? false
                    bindHere = []
                } else {
                    // Several: each inherited socket is the configured listener with its address (as uWSGI
                    // matches inherited sockets), so each keeps its own protocol.
                    guard let address, let k = bindHere.firstIndex(where: { sameAddress($0.address, address) })
                            ?? bindHere.firstIndex(where: { sameAddress($0.address, address, portZeroMatches: true) }) else {
                        throw SWSGIError("LISTEN_FDS: fd \(fd) (\(address?.description ?? "unknown address")) is none of the configured listeners (\(configured.map(\.description).joined(separator: ", "))); configure it, or stop passing it")
                    }
                    l.speaksUwsgi = bindHere[k].uwsgiProtocol
                    l.description = "\(bindHere[k]) (fd \(fd) from LISTEN_FDS)"
                    bindHere.remove(at: k)
                }
                listeners.append(l)
            }
        } else if configured.isEmpty {
            throw SWSGIError("no listener: give --socket PATH or --http-socket HOST:PORT, or start under socket activation (LISTEN_FDS)")
        }
        // Two spellings of one file (a symlinked folder, a relative and an absolute path) would bind twice and
        // fail half-way with EEXIST: refused here, naming both, before anything is bound.
        var files: [String: ListenerSpec] = [:]
        for spec in bindHere {
            guard case .unix(let path) = spec.address else { continue }
            let (dir, name) = splitPath(path)
            guard let real = realpath(dir, nil) else { continue }
            let key = String(cString: real) + "/" + name
            free(real)
            if let first = files[key] {
                throw SWSGIError("\(spec.flag) \(path): the same socket file as \(first.flag) \(first.address); each listener needs its own")
            }
            files[key] = spec
        }
        do {
            for spec in bindHere {
                var l: Listener
                switch spec.address {
                case .unix(let path): l = try bindUnix(path, o, environment: env, flag: spec.flag)
                case .tcp(let addr): l = try bindTCP(addr, o, flag: spec.flag)
                }
                l.speaksUwsgi = spec.uwsgiProtocol
                l.description = spec.description
                // Port 0: the log names the port the kernel chose, the only way to find the server.
                if case .tcp(let a) = spec.address, a.port == 0, case .tcp(let bound)? = boundAddress(l.fd) {
                    l.description = ListenerSpec(address: .tcp(HTTPSocketAddress(host: a.host, port: bound.port)),
                                                 uwsgiProtocol: spec.uwsgiProtocol).description + " (port 0: chosen by the kernel)"
                }
                listeners.append(l)
            }
        } catch {
            for l in listeners { l.vacuum() }
            throw error
        }
        return listeners
    }

    /// The address a socket is bound to (getsockname): a Unix path or an IPv4/IPv6 address and port.
    static func boundAddress(_ fd: Int32) -> UwsgiSocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard r == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            let path = withUnsafeBytes(of: &storage) { raw -> String in
                let bytes = raw[MemoryLayout<sa_family_t>.size..<Int(len)].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            return .unix(path)
        case AF_INET, AF_INET6:
            return socketAddress(fd, peer: false).map { .tcp(HTTPSocketAddress(host: $0.host, port: UInt16($0.port))) }
        default:
            return nil
        }
    }

    /// Whether a configured address names the socket bound at `bound`: the same Unix file (the path as
    /// written, or the same inode), or the same port on the same (or every) address.
    /// `portZeroMatches`: a configured port 0 (any free port) takes the inherited socket's; asked only after
    /// no listener names that port, so a port-0 listener never takes the socket meant for another.
    static func sameAddress(_ configured: UwsgiSocketAddress, _ bound: UwsgiSocketAddress, portZeroMatches: Bool = false) -> Bool {
        switch (configured, bound) {
        case (.unix(let a), .unix(let b)):
            if a == b { return true }
            guard let ia = UnixSocket.inode(atPath: a), let ib = UnixSocket.inode(atPath: b) else { return false }
            return ia == ib
        case (.tcp(let a), .tcp(let b)):
            let every = ["", "0.0.0.0", "::"]
            let host = a.host == "localhost" ? "127.0.0.1" : a.host
            // Port 0 asked the kernel for any free port: the inherited socket is that one.
            return (a.port == b.port || (portZeroMatches && a.port == 0)) && (host == b.host || (every.contains(host) && every.contains(b.host)))
        default:
            return false
        }
    }

    /// Binds an unpredictable temporary name beside `path`; `publish()` later renames it into place, so
    /// during a rebind clients always find a listener at the path (the old one or the new one), never nothing.
    /// Only a stale socket (nobody accepting) may be replaced; a live listener's path is refused unless
    /// hupwatch is handing over to us (see `SocketPathRule`); anything that is not a socket is refused.
    static func bindUnix(_ path: String, _ o: ServerOptions, environment env: [String], flag: String = "--socket") throws -> Listener {
        let (dir, _) = splitPath(path)
        guard isDirectory(dir) else { throw SWSGIError("\(flag) \(path): folder \(dir) does not exist") }
        let successor = SocketPathRule.isHupwatchSuccessor(env)
        let replace = try SocketPathRule.check(path, option: flag, successor: successor)
        let staleInode = replace ? UnixSocket.inode(atPath: path) : nil
        let sock = try UnixSocket.stream()
        var tmp = ""
        var bound = false
        // The name is unpredictable and bind(2) creates it exclusively (EADDRINUSE if anything is there,
        // a symlink included): a planted file is never removed or followed. Short (`.s` + hex), shorter
        // still near sun_path's limit; when not even that fits, the path itself is bound, after removing
        // the stale socket that is (still) there.
        for _ in 0..<8 where !bound {
            let suffix = try unpredictableSuffix()
            tmp = [16, 6].lazy.map { dir + "/.s" + suffix.prefix($0) }.first { SocketPath.problem($0) == nil } ?? path
            if tmp == path, replace {
                try confirmStale(path, inode: staleInode, successor: successor)
                if unlink(path) != 0 && errno != ENOENT { throw SyscallError("unlink", context: path) }
            }
            let r = tmp.withCString { shimBind(sock.raw, $0) }
            if r == 0 { bound = true; break }
            let e = errno
            if tmp == path || e != EADDRINUSE { throw SyscallError("bind", errno: e, context: path) }
        }
        guard bound else { throw SWSGIError("--socket \(path): no free temporary name in \(dir)") }
        do {
            if let mode = o.chmodSocket { try syscall("chmod", path) { chmod(tmp, mode_t(mode)) } }
            if let owner = o.chownSocket { try chown(tmp, owner) }
            try syscall("listen", path) { Glibc.listen(sock.raw, Int32(o.listenBacklog)) }
        } catch {
            if tmp != path { unlink(tmp) }
            throw error
        }
        let pathInode = UnixSocket.inode(atPath: tmp)
        let inode = try UnixSocket.inode(of: sock.raw)
        return Listener(fd: sock.release(), inode: inode, pathInode: pathInode, ownedPath: path,
                        temporaryPath: tmp == path ? nil : tmp, replacesPath: replace, staleInode: staleInode,
                        successor: successor, isUnix: true, description: "unix:\(path)", keepsPathAtExit: !o.vacuum)
    }

    /// Throws unless `path` still holds the stale socket `inode` found at start-up with nobody accepting
    /// on it: start-up (app loading, hooks) takes time, and meanwhile an operator may have put a file there,
    /// or another instance published its own socket over the same stale one.
    static func confirmStale(_ path: String, inode: ino_t?, successor: Bool) throws {
        guard let inode, UnixSocket.inode(atPath: path) == inode else {
            throw SWSGIError("--socket \(path): the stale socket found at start-up was replaced by something else meanwhile (another server, or a file): refusing to replace it")
        }
        if !successor && UnixSocket.hasLiveListener(path) {
            throw SWSGIError("--socket \(path): a live server now accepts on this path (started meanwhile): refusing to take it over")
        }
    }

    /// Moves a socket bound under its temporary name onto its path: over a stale socket when the check
    /// found one, else only if the path is still free (something created there meanwhile is kept).
    mutating func publish() throws {
        guard let tmp = temporaryPath, let path = ownedPath else { return }
        do {
            // Re-checked right before the rename (the start-up check was seconds ago); a stale socket
            // removed meanwhile leaves a free path, taken only if still free.
            if replacesPath, (try pathKind(path)) != .missing {
                try Self.confirmStale(path, inode: staleInode, successor: successor)
                try syscall("rename", path) { rename(tmp, path) }
            } else {
                try renameNoReplace(tmp, path)
            }
        } catch let e as SWSGIError {
            unlink(tmp)
            throw e
        } catch {
            unlink(tmp)
            throw SWSGIError("--socket \(path): \(error)")
        }
        temporaryPath = nil
    }

    /// Removes the temporary name of a socket that was never published (start-up failed).
    func discardUnpublished() {
        if let tmp = temporaryPath, UnixSocket.inode(atPath: tmp) == pathInode { unlink(tmp) }
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

    static func bindTCP(_ a: HTTPSocketAddress, _ o: ServerOptions, flag: String = "--http-socket") throws -> Listener {
        guard !a.host.contains(":") else { throw SWSGIError("\(flag) \(a): IPv6 addresses are not supported yet") }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = a.port.bigEndian
        let host = a.host.isEmpty ? "0.0.0.0" : (a.host == "localhost" ? "127.0.0.1" : a.host)
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { throw SWSGIError("\(flag) \(a): '\(a.host)' is not an IPv4 address") }
        let fd = try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        // Inherited by accepted connections: a response written in two sends must not wait on a delayed ACK.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(4))
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
    /// bound the same path since, and its socket must survive our exit. With `--vacuum false` the
    /// published path stays (a temporary name never published is still removed: nobody asked for it).
    func vacuum() {
        discardUnpublished()
        guard !keepsPathAtExit, let path = ownedPath, let mine = pathInode else { return }
        if UnixSocket.inode(atPath: path) == mine { unlink(path) }
    }
}
