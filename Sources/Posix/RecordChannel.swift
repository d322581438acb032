import Glibc

// Glibc only, on purpose: a file importing CGlibcShim that names the socket-type enum (SOCK_SEQPACKET)
// can make that C module own the enum on a clean build, and files importing only Glibc (TCPSocket.swift)
// then lose SOCK_STREAM and SOCK_CLOEXEC.

/// Both ends of a SOCK_SEQPACKET socketpair (non-blocking, close-on-exec): ordered records between
/// processes. The master keeps both ends, so records queued for a process that died wait for its successor.
public struct RecordChannel: Sendable {
    public let readEnd: Int32
    public let writeEnd: Int32

    public init() throws {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_SEQPACKET.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)
        _ = try syscall("socketpair", "SOCK_SEQPACKET") { socketpair(AF_UNIX, type, 0, &fds) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    public enum SendResult { case sent, full }

    /// Sends one record without blocking.
    public static func send(_ fd: Int32, _ bytes: [UInt8]) throws -> SendResult {
        while true {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n >= 0 { return .sent }
            if errno == EINTR { continue }
            if errno == EAGAIN { return .full }
            throw SyscallError("send", errno: errno, context: "record of \(bytes.count) bytes")
        }
    }

    /// Sends one record, waiting up to `timeoutMilliseconds` for room.
    public static func send(_ fd: Int32, _ bytes: [UInt8], timeoutMilliseconds: Int32) throws -> SendResult {
        let deadline = monotonicNanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        while true {
            if try send(fd, bytes) == .sent { return .sent }
            let now = monotonicNanoseconds()
            if now >= deadline { return .full }
            _ = waitWritable(fd, timeoutMilliseconds: Int32((deadline - now) / 1_000_000 + 1))
        }
    }

    /// The largest record `receive` takes whole; senders must stay within it.
    public static let maxRecordBytes = 66_048

    /// The next record, nil when none is waiting (another process may have taken it). `buffer` is
    /// scratch space the caller keeps (grown to `maxRecordBytes`), so no allocation per record but the result.
    public static func receive(_ fd: Int32, buffer: inout [UInt8]) throws -> [UInt8]? {
        if buffer.count < maxRecordBytes { buffer = [UInt8](repeating: 0, count: maxRecordBytes) }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            if errno == EAGAIN { return nil }
            throw SyscallError("recv", errno: errno, context: "record")
        }
    }
}
