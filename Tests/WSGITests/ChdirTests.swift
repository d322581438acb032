// --chdir comes first, as in uWSGI: relative paths (--socket, --pid-file, --stats, --logto) name files in
// that folder, and nothing (a temporary socket name included) is ever created in the starting folder.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    @Suite struct Chdir {
        @Test func relativePathsAreInTheChdirFolderNotTheStartingOne() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.mkdir("srv")
            try dir.mkdir("start")
            try dir.write("srv/app.py", """
            def application(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain')])
                return [b'from srv']
            """)
            let s = try Server(["--processes", "1", "--chdir", dir.file("srv"), "--wsgi-file", "app.py",
                                "--socket", "app.sock", "--pid-file", "app.pid", "--stats", "stats.sock",
                                "--logto", "app.log"],
                               dir: dir, socket: nil, environment: PythonUnderTest.debian.environment,
                               shell: "cd \(dir.file("start")) && exec \"$0\" \"$@\"", ready: false)
            defer { s.stop() }
            let served = waitUntil(15) {
                if case .success(let r) = unixGet(dir.file("srv/app.sock")), r.status == 200, r.body == "from srv" { return true }
                return s.waitExit(timeout: 0.05) != nil ? true : false
            }
            // A worker can answer before the master has written its readiness line: wait for the line.
            var log = ""
            _ = waitUntil(10) {
                log = (try? String(contentsOfFile: dir.file("srv/app.log"), encoding: .utf8)) ?? ""
                return log.contains("workers accepting")
            }
            #expect(served && fileExists(dir.file("srv/app.sock")), "swsgi log:\n\(s.log)\nlogto:\n\(log)")
            #expect(((try? String(contentsOfFile: dir.file("srv/app.pid"), encoding: .utf8)) ?? "") == "\(s.pid)\n")
            #expect(fileExists(dir.file("srv/stats.sock")))
            #expect(log.contains("workers accepting"), "logto in srv: \(log)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("start"))) ?? ["?"]
            #expect(left.isEmpty, "nothing is created in the starting folder: \(left)")
            #expect(s.stop() == 0)
            let after = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("start"))) ?? ["?"]
            #expect(after.isEmpty, "nor left there at exit: \(after)")
            #expect(!fileExists(dir.file("srv/app.sock")), "the socket is removed at exit")
        }
    }
}
