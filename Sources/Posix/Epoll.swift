import CGlibcShim
import Glibc

/// An epoll instance: level-triggered readiness for many fds, each tagged with a 64-bit token.
public struct Epoll: ~Copyable {
    public let fd: FileDescriptor
    private var tokens = [UInt64](repeating: 0, count: 64)
    private var masks = [UInt32](repeating: 0, count: 64)

    public static let readable = UInt32(EPOLLIN.rawValue)
    public static let exclusive = UInt32(1 << 28) // EPOLLEXCLUSIVE: wake one waiter per connection
    public static let hangup = UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue)

    public init() throws {
        fd = FileDescriptor(adopting: try syscall("epoll_create1") { shim_epoll_create() })
    }

    public func add(_ target: Int32, token: UInt64, events: UInt32 = Epoll.readable) throws {
        try syscall("epoll_ctl(ADD)") { shim_epoll_ctl(fd.raw, EPOLL_CTL_ADD, target, events, token) }
    }

    public func modify(_ target: Int32, token: UInt64, events: UInt32) throws {
        try syscall("epoll_ctl(MOD)") { shim_epoll_ctl(fd.raw, EPOLL_CTL_MOD, target, events, token) }
    }

    public func remove(_ target: Int32) {
        _ = shim_epoll_ctl(fd.raw, EPOLL_CTL_DEL, target, 0, 0)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever); returns (token, events) pairs. EINTR: none.
    public mutating func wait(timeoutMilliseconds: Int32) throws -> [(token: UInt64, events: UInt32)] {
        let n = try waitCount(timeoutMilliseconds: timeoutMilliseconds)
        return (0..<n).map { event($0) }
    }

    /// `wait` without making an array (a busy worker's loop): the number of events, each then read
    /// with `event(_:)` until the next wait.
    public mutating func waitCount(timeoutMilliseconds: Int32) throws -> Int {
        let n = tokens.withUnsafeMutableBufferPointer { t in
            masks.withUnsafeMutableBufferPointer { m in
                shim_epoll_wait(fd.raw, t.baseAddress, m.baseAddress, 64, timeoutMilliseconds)
            }
        }
        if n < 0 {
            if errno == EINTR { return 0 }
            throw SyscallError("epoll_wait")
        }
        return Int(n)
    }

    /// Event `i` of the last `waitCount`.
    public func event(_ i: Int) -> (token: UInt64, events: UInt32) { (tokens[i], masks[i]) }
}

/// Waits until `fd` is writable or `timeoutMilliseconds` pass; false on timeout.
public func waitWritable(_ fd: Int32, timeoutMilliseconds: Int32) -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    while true {
        let r = poll(&p, 1, timeoutMilliseconds)
        if r < 0 && errno == EINTR { continue }
        return r > 0
    }
}

/// Runs when a blocking write to a client is interrupted by a signal (EINTR): a host whose signal
/// handlers run later (Python's) runs them here; throwing abandons the write. Set once per worker.
public nonisolated(unsafe) var onBlockingWriteInterrupted: (() throws -> Void)?

/// `waitWritable` that lets `onBlockingWriteInterrupted` act on each EINTR.
public func waitWritableInterruptibly(_ fd: Int32, timeoutMilliseconds: Int32) throws -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    while true {
        let r = poll(&p, 1, timeoutMilliseconds)
        if r < 0 && errno == EINTR {
            try onBlockingWriteInterrupted?()
            continue
        }
        return r > 0
    }
}

/// Waits until `fd` is readable or `timeoutMilliseconds` pass; false on timeout.
public func waitReadable(_ fd: Int32, timeoutMilliseconds: Int32) -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while true {
        let r = poll(&p, 1, timeoutMilliseconds)
        if r < 0 && errno == EINTR { continue }
        return r > 0
    }
}
