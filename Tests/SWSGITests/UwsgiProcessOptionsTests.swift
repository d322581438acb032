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
