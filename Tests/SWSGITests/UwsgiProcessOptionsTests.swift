import Foundation
import Glibc
import Testing

/// `[uwsgi]` process-level options on a real swsgi (the built-in app, no Python needed).
@Suite struct UwsgiProcessOptions {
    private func start(_ ini: String, in dir: TempDir, ready: Bool = true) throws -> Server {
        try dir.write("app.ini", "[uwsgi]\n" + ini)
        return try Server(["--ini", dir.file("app.ini")], dir: dir, ready: ready)
    }

    /// `processes = 2*2` runs 2 workers, as uWSGI's strtol reads it, and says so once at start-up.
    @Test func aNumberIsReadAsUwsgiReadsItWithAWarning() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let s = try start("processes = 2*2\n", in: dir)
        defer { s.stop() }
        #expect(s.waitWorkers(2).count == 2, "\(s.workers)\n\(s.log)")
        #expect(try s.get("/").status == 200)
        #expect(s.log.components(separatedBy: "processes = '2*2' is not a plain number: read as 2").count - 1 == 1, "\(s.log)")
    }
}

extension UwsgiProcessOptions {
    /// `uid =` / `gid =` (empty), as uWSGI: nothing to drop to when not started as root; as root swsgi
    /// stops before binding (uWSGI: "user  not found") rather than serve as root.
    @Test func emptyUidAndGid() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        if geteuid() == 0 {
            let s = try start("processes = 1\nuid =\ngid =\n", in: dir, ready: false)
            defer { s.stop() }
            let status = s.waitExit(timeout: 10)
            #expect(status != nil && status != 0, "\(s.log)")
            #expect(s.log.contains("--uid is empty: started as root"), "\(s.log)")
            #expect(!fileExists(dir.file("s")), "refused before binding")
        } else {
            let s = try start("processes = 1\nuid =\ngid =\n", in: dir)
            defer { s.stop() }
            #expect(try s.get("/").status == 200)
            #expect(statusField(s.pid, "Uid")?.hasPrefix("\(getuid())") == true)
        }
    }
}
