import Glibc
import Posix
import Testing

/// hupwatch's `socket:` probe lets go of its connection the moment the server has accepted it, whatever
/// else waits in the queue: it asks the kernel about its own connection, not the queue's length.
@Suite struct ConnectionAcceptedTests {
    @Test func queuedThenAcceptedThenClosedByTheServer() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("l.sock")
        let listener = try UnixSocket.listen(path: path, backlog: 4)
        let probe = try UnixSocket.connect(path: path, nonBlocking: true)
        let other = try UnixSocket.connect(path: path, nonBlocking: true)
        #expect(try UnixSocket.connectionAccepted(probe.raw) == false)
        #expect(try UnixSocket.connectionAccepted(other.raw) == false)
        // The server holds ours; another client still waits behind it.
        let accepted = try #require(try UnixSocket.accept(listener.raw)?.release())
        #expect(try UnixSocket.connectionAccepted(probe.raw) == true)
        #expect(try UnixSocket.connectionAccepted(other.raw) == false)
        // Accepted and already closed (the peer has no inode any more, but our side reads EOF).
        close(accepted)
        #expect(try UnixSocket.connectionAccepted(probe.raw) == true)
        _ = other.raw
    }

    @Test func aListenerClosedWhileWeWaitIsAnError() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("l.sock")
        let listener = try UnixSocket.listen(path: path, backlog: 4).release()
        let probe = try UnixSocket.connect(path: path, nonBlocking: true)
        close(listener)
        #expect(throws: SyscallError.self) { try UnixSocket.connectionAccepted(probe.raw) }
    }
}
