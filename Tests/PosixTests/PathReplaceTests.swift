import Glibc
import Posix
import Testing

/// hupwatch points its public path at a generation with `replaceWithLink`; what it did not put there is never its
/// to replace, and is never moved aside either, not even for a moment: a client connecting then, or a test reading
/// the path right after a refused reload, would find hupwatch's link instead (seen once in the full suite).
@Suite struct PathReplaceTests {
    @Test(arguments: ["a regular file", "a listener of another server"])
    func somethingNotReplaceableStaysInPlaceThroughout(_ what: String) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = dir.file("app.sock"), ours = dir.file(".app.sock.g2"), scratch = dir.file(".app.sock.new")
        var other: Int32 = -1
        defer { if other >= 0 { close(other) } }
        if what == "a regular file" {
            try dir.write("app.sock", "precious data")
        } else {
            other = try UnixSocket.listen(path: path, backlog: 4).release()
        }
        let theirs = try #require(fileInodeOf(path))
        let mine = try UnixSocket.listen(path: ours, backlog: 4)
        _ = mine
        var asked: [(ino_t, ino_t?)] = []
        let problem = replaceWithLink(path, to: ours, scratch: scratch) { _, inode in
            // Whenever the caller is asked, the path still holds what was there.
            asked.append((inode, fileInodeOf(path)))
            return false
        }
        #expect(problem?.contains("refusing to replace it") == true, "\(problem ?? "nil")")
        #expect(fileInodeOf(path) == theirs)
        for (inode, atPath) in asked {
            #expect(inode == theirs && atPath == theirs, "\(what) was moved aside while it was looked at")
        }
        #expect(fileInodeOf(scratch) == nil, "nothing is left at the scratch name")
    }
}

private func fileInodeOf(_ path: String) -> ino_t? {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_ino : nil
}
