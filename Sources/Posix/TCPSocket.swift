import CGlibcShim
import Glibc

/// TCP listeners. SO_REUSEADDR only lets a port in TIME_WAIT be bound again; a port with a live listener
/// still fails with EADDRINUSE (no SO_REUSEPORT: a listener is never shared with, or stolen from, another).
public enum TCPSocket {
    /// Binds and listens on `host:port`; `host` is an IPv4 or IPv6 literal, "" for every address (IPv6
    /// with IPv4 mapped, or IPv4 alone where the kernel has no IPv6).
    public static func listen(host: String, port: UInt16, backlog: Int32) throws -> FileDescriptor {
        let label = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if host.isEmpty {
            do { return try listen6(host: "::", port: port, backlog: backlog, label: label, dualStack: true) } catch let e as SyscallError where e.errno == EAFNOSUPPORT {
                return try listen4(host: "0.0.0.0", port: port, backlog: backlog, label: label)
            }
        }
        return host.contains(":") ? try listen6(host: host, port: port, backlog: backlog, label: label, dualStack: false)
                                  : try listen4(host: host, port: port, backlog: backlog, label: label)
    }

    private static func listen4(host: String, port: UInt16, backlog: Int32, label: String) throws -> FileDescriptor {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { throw SyscallError("inet_pton", errno: EINVAL, context: host) }
        let fd = FileDescriptor(adopting: try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) })
        try prepare(fd.raw)
        try syscall("bind", label) { withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd.raw, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } }
        try syscall("listen", label) { Glibc.listen(fd.raw, backlog) }
        return fd
    }

    private static func listen6(host: String, port: UInt16, backlog: Int32, label: String, dualStack: Bool) throws -> FileDescriptor {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        guard inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1 else { throw SyscallError("inet_pton", errno: EINVAL, context: host) }
        let fd = FileDescriptor(adopting: try syscall("socket") { socket(AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) })
        try prepare(fd.raw)
        var v6only: Int32 = dualStack ? 0 : 1
        try syscall("setsockopt(IPV6_V6ONLY)") { setsockopt(fd.raw, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, 4) }
        try syscall("bind", label) { withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd.raw, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } } }
        try syscall("listen", label) { Glibc.listen(fd.raw, backlog) }
        return fd
    }

    private static func prepare(_ fd: Int32) throws {
        var one: Int32 = 1
        try syscall("setsockopt(SO_REUSEADDR)") { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4) }
    }
}

/// Bytes written to the connected TCP socket `fd` that its peer has not acknowledged yet, unsent ones included
/// (SIOCOUTQ): what a reset would destroy.
public func unacknowledgedBytes(_ fd: Int32) throws -> Int {
    Int(try syscall("ioctl(SIOCOUTQ)") { shim_unacknowledged_bytes(fd) })
}
