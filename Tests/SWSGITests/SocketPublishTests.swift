import Foundation
import Glibc
import Testing

/// The socket path is checked at start-up but published (renamed into place) only after the app has
/// loaded: the path is re-checked right before, so what appeared there meanwhile is never clobbered.
extension SWSGIIntegration {
    @Suite struct SocketPublish {
        /// A stale socket at start-up, a regular file by publish time: the file is kept, swsgi exits non-zero.
        @Test func fileWrittenOverAStaleSocketDuringStartUpIsKept() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            close(try makeListener(dir.file("s")))
            let r = try runToExit(["--processes", "1", "--exec-pre-app", "rm -f {dir}/s && printf precious > {dir}/s"],
                                  socket: "s", in: dir)
            #expect(r.status != 0)
            #expect(r.output.contains("replaced by something else"), "\(r.output)")
            #expect((try? String(contentsOfFile: dir.file("s"), encoding: .utf8)) == "precious")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".s") }
            #expect(leftovers.isEmpty, "temporary socket names left: \(leftovers)")
        }

        /// Another server published its own socket over the same stale one meanwhile (another inode):
        /// it is not hijacked.
        @Test func anotherSocketPublishedMeanwhileIsNotHijacked() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            close(try makeListener(dir.file("s")))
            close(try makeListener(dir.file("other")))
            let r = try runToExit(["--processes", "1", "--exec-pre-app", "mv {dir}/s {dir}/old && mv {dir}/other {dir}/s"],
                                  socket: "s", in: dir)
            #expect(r.status != 0)
            #expect(r.output.contains("replaced by something else"), "\(r.output)")
        }

        /// A stale socket on a path so long that no temporary name beside it fits in sun_path is replaced.
        @Test func staleSocketOnALongPathIsReplaced() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let sub = String(repeating: "d", count: 100 - dir.path.utf8.count - 1)
            try FileManager.default.createDirectory(atPath: dir.file(sub), withIntermediateDirectories: true)
            let rel = sub + "/s"
            #expect(dir.file(rel).utf8.count == 102)
            close(try makeListener(dir.file(rel)))
            let s = try Server(["--processes", "1"], dir: dir, socket: rel)
            defer { s.stop() }
            #expect(try s.get("/").status == 200)
        }
    }
}
