import Glibc
import Posix
import Testing

/// hupwatch's handover reads the old listener's queue by the inode of its socket FILE, which stays
/// valid after the path has been taken over by the new generation's socket.
@Suite struct ListenQueueByFileTests {
    @Test func countsQueuedConnectionsByFileInodeEvenAfterThePathMovedOn() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("old.sock")
        let old = try UnixSocket.listen(path: path, backlog: 16)
        let fileInode = try #require(UnixSocket.inode(atPath: path))
        #expect(try UnixSocket.listenQueue(fileInode: fileInode) == 0)
        let c1 = try UnixSocket.connect(path: path)
        let c2 = try UnixSocket.connect(path: path)
        #expect(try UnixSocket.listenQueue(fileInode: fileInode) == 2)

        // A new listener renamed over the path, as a rebinding server does: the old one is still found.
        let tmp = dir.file("new.sock")
        let new = try UnixSocket.listen(path: tmp, backlog: 16)
        #expect(rename(tmp, path) == 0)
        #expect(UnixSocket.inode(atPath: path) != fileInode)
        #expect(try UnixSocket.listenQueue(fileInode: fileInode) == 2)

        let accepted = try UnixSocket.accept(old.raw)?.release()
        #expect(accepted != nil)
        if let accepted { close(accepted) }
        #expect(try UnixSocket.listenQueue(fileInode: fileInode) == 1)
        _ = (c1.raw, c2.raw, new.raw)
    }

    @Test func aListenerThatIsGoneIsNil() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("gone.sock")
        var fileInode: ino_t = 0
        do {
            let l = try UnixSocket.listen(path: path, backlog: 4)
            fileInode = try #require(UnixSocket.inode(atPath: path))
            _ = l.raw
        }
        #expect(try UnixSocket.listenQueue(fileInode: fileInode) == nil)
    }
}

@Suite struct ConnectionAcceptedTests {
    /// Accepts one connection, as a raw fd the test closes itself.
    func acceptOne(_ listener: Int32) throws -> Int32 {
        let fd = accept(listener, nil, nil)
        if fd < 0 { throw SyscallError("accept") }
        return fd
    }

    /// The readiness probe's proof: our own connection left the queue, whatever else is queued.
    @Test func acceptedOnlyOnceTheServerTookOurConnection() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("l.sock")
        let listener = try UnixSocket.listen(path: path, backlog: 8).release()
        defer { close(listener) }
        let others = try (0..<3).map { _ in try UnixSocket.connect(path: path, nonBlocking: true).release() }
        defer { others.forEach { close($0) } }
        let mine = try UnixSocket.connect(path: path, nonBlocking: true).release()
        defer { close(mine) }
        #expect(try UnixSocket.isAccepted(mine) == false, "still queued")
        // Accept the three ahead of us: ours is still waiting, though others were taken.
        let taken = try (0..<3).map { _ in try acceptOne(listener) }
        defer { taken.forEach { close($0) } }
        #expect(try UnixSocket.isAccepted(mine) == false)
        let ours = try acceptOne(listener)
        #expect(try UnixSocket.isAccepted(mine) == true)
        close(ours)   // accepted, then closed by the server: still counts as accepted
        #expect(try UnixSocket.isAccepted(mine) == true)
    }

    @Test func aConnectionResetByAClosedListenerIsAnError() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("l.sock")
        let listener = try UnixSocket.listen(path: path, backlog: 8).release()
        let mine = try UnixSocket.connect(path: path, nonBlocking: true).release()
        defer { close(mine) }
        close(listener)
        #expect(throws: SyscallError.self) { try UnixSocket.isAccepted(mine) }
    }
}
