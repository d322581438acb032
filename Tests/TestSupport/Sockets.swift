import Glibc

// Addresses, listeners and the sd_notify stand-in the tests bind themselves.

/// A sockaddr_un for `path`, nil when the path does not fit sun_path (107 bytes and the NUL).
public func unixAddress(_ path: String) -> sockaddr_un? {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    return addr
}

/// 127.0.0.1:port.
public func loopbackAddress(port: UInt16) -> sockaddr_in {
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return sin
}

/// Binds `fd` to the Unix socket path `path`.
public func bindUnix(_ fd: Int32, _ path: String) throws {
    guard var addr = unixAddress(path) else { throw TestFailure("socket path too long: \(path)") }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard r == 0 else { throw TestFailure("bind \(path): \(errnoText(errno))") }
}

/// A listening Unix stream socket bound by the test itself (close-on-exec, at fd >= 100 so it is never
/// already fd 3 when handed to a child).
public func makeListener(_ path: String, backlog: Int32 = 16) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errnoText(errno))") }
    defer { close(fd) }
    try bindUnix(fd, path)
    guard listen(fd, backlog) == 0 else { throw TestFailure("listen \(path): \(errnoText(errno))") }
    let high = fcntl(fd, F_DUPFD_CLOEXEC, 100)
    guard high >= 0 else { throw TestFailure("F_DUPFD_CLOEXEC: \(errnoText(errno))") }
    return high
}

/// A TCP port on 127.0.0.1 nobody listens on right now (bound once to port 0, then released).
public func freeLocalPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket(AF_INET): \(errnoText(errno))") }
    defer { close(fd) }
    var sin = loopbackAddress(port: 0)
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sin) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TestFailure("bind(127.0.0.1:0): \(errnoText(errno))") }
    return UInt16(bigEndian: sin.sin_port)
}

/// A stand-in for systemd's notify socket: a datagram socket with SO_PASSCRED, so each message comes with
/// the sender's pid, as systemd sees it.
public final class NotifySocket {
    public let path: String
    public let fd: Int32
    /// Every message received so far, with its sender's pid.
    public private(set) var received: [(pid: pid_t, text: String)] = []
    /// The texts of `received`.
    public var messages: [String] { received.map(\.text) }

    public init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errnoText(errno))") }
        do { try bindUnix(fd, path) } catch {
            close(fd)
            throw error
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, socklen_t(4))
    }

    deinit { close(fd) }

    /// Reads every queued message.
    public func drain() {
        while true {
            var buf = [UInt8](repeating: 0, count: 4096)
            var control = [UInt8](repeating: 0, count: 256)
            var controlLength = 0
            let n = buf.withUnsafeMutableBytes { b in
                control.withUnsafeMutableBytes { c in
                    var iov = iovec(iov_base: b.baseAddress, iov_len: b.count)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var msg = msghdr()
                        msg.msg_iov = iovp
                        msg.msg_iovlen = 1
                        msg.msg_control = c.baseAddress
                        msg.msg_controllen = c.count
                        let r = recvmsg(fd, &msg, Int32(MSG_DONTWAIT))
                        controlLength = Int(msg.msg_controllen)
                        return r
                    }
                }
            }
            if n < 0 { return }
            // struct cmsghdr { size_t len; int level; int type; } then struct ucred { pid; uid; gid; }
            var sender: pid_t = 0
            if controlLength >= 28 {
                control.withUnsafeBytes { c in
                    let level = c.load(fromByteOffset: 8, as: Int32.self)
                    let type = c.load(fromByteOffset: 12, as: Int32.self)
                    if level == SOL_SOCKET && type == 2 /* SCM_CREDENTIALS */ { sender = c.load(fromByteOffset: 16, as: Int32.self) }
                }
            }
            received.append((sender, String(decoding: buf[..<n], as: UTF8.self)))
        }
    }

    /// Every message text so far, after reading what is queued.
    public var texts: [String] { drain(); return messages }

    /// Collects messages until one after index `after` satisfies `match`, or `timeout` passes; its index.
    public func waitFor(timeout: Double, after: Int = -1, _ match: (String) -> Bool) -> Int? {
        let deadline = monotonicSeconds() + timeout
        var checked = after + 1
        while true {
            drain()
            let texts = messages
            if checked < texts.count, let i = texts.indices[checked...].first(where: { match(texts[$0]) }) { return i }
            checked = max(checked, texts.count)
            let left = deadline - monotonicSeconds()
            if left <= 0 { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(max(1, left * 1000)))
        }
    }
}

/// Swift's Glibc module does not show accept4; it is looked up at run time.
private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
private let accept4Function: Accept4? = {
    guard let sym = dlsym(nil, "accept4") else { return nil }
    return unsafeBitCast(sym, to: Accept4.self)
}()

/// Accepts one connection, close-on-exec from the start (a test playing server must not leak fds into
/// the children other tests spawn meanwhile); -1 with errno set on failure.
public func acceptConnection(_ listener: Int32) -> Int32 {
    guard let accept4 = accept4Function else {
        errno = ENOSYS
        return -1
    }
    return accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
}

/// A uwsgi-protocol request (nginx's uwsgi_pass framing): modifier1 0, the variables, modifier2 0.
public func uwsgiPacket(_ vars: [(String, String)]) -> [UInt8] {
    var block: [UInt8] = []
    for (k, v) in vars {
        let kb = Array(k.utf8), vb = Array(v.utf8)
        block += [UInt8(kb.count & 0xff), UInt8(kb.count >> 8)] + kb + [UInt8(vb.count & 0xff), UInt8(vb.count >> 8)] + vb
    }
    return [0, UInt8(block.count & 0xff), UInt8(block.count >> 8), 0] + block
}
