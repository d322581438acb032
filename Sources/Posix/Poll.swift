import Glibc

/// Blocks in poll(2) until one of `fds` is readable (or errs/hangs up); -1 means no timeout.
/// Returns the indexes that are ready. EINTR yields an empty list.
public func waitReadable(_ fds: [Int32], timeoutMilliseconds: Int32 = -1) throws -> [Int] {
    var pfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let n = poll(&pfds, nfds_t(pfds.count), timeoutMilliseconds)
    if n < 0 {
        if errno == EINTR { return [] }
        throw SyscallError("poll")
    }
    return pfds.indices.filter { pfds[$0].revents != 0 }
}
