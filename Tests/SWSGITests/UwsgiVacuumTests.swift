import Foundation
import Glibc
import Testing

extension SWSGIIntegration.UwsgiProcessOptions {
    /// `vacuum = true` (swsgi's default): at exit the socket file, pid file, stats socket and master FIFO
    /// are removed. `vacuum = false` (uWSGI's meaning): all four stay, and the next start takes over the
    /// stale socket and stats socket, rewrites the pid file and makes its FIFO anew.
    @Test(arguments: [true, false])
    func vacuumDecidesWhatStaysAtExit(_ vacuum: Bool) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.ini", """
            [uwsgi]
            processes = 1
            vacuum = \(vacuum)
            pidfile = %dpid
            stats = %dst
            master-fifo = %dfifo
            """)
        let made = ["s", "pid", "st", "fifo"].map { dir.file($0) }
        for round in 1...(vacuum ? 1 : 2) {
            let s = try Server(["--ini", dir.file("app.ini")], dir: dir, name: "swsgi\(round)")
            #expect(try s.get("/").status == 200, "round \(round)")
            #expect(made.allSatisfy(fileExists), "round \(round): \(made.filter { !fileExists($0) }) missing while serving")
            #expect(try String(contentsOfFile: dir.file("pid"), encoding: .utf8) == "\(s.pid)\n")
            #expect(s.stop() == 0, "\(s.log)")
            if vacuum {
                #expect(made.allSatisfy { !fileExists($0) }, "vacuum = true: \(made.filter(fileExists)) left behind")
            } else {
                #expect(made.allSatisfy(fileExists), "vacuum = false, round \(round): \(made.filter { !fileExists($0) }) removed")
            }
        }
    }
}

extension SWSGIIntegration.UwsgiProcessOptions {
    /// vacuum removes the pid file only while it is still ours: a file another process (a newer
    /// instance, an operator, a supervisor) rewrote in place or replaced names someone else and stays.
    @Test(arguments: ["in place", "replaced"])
    func vacuumLeavesAPidFileSomeoneElseRewrote(_ how: String) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("app.ini", "[uwsgi]\nprocesses = 1\npidfile = %dpid\n")
        let s = try Server(["--ini", dir.file("app.ini")], dir: dir)
        #expect(try String(contentsOfFile: dir.file("pid"), encoding: .utf8) == "\(s.pid)\n")
        if how == "in place" {
            // `echo 4242 > pid`: the same inode, other content.
            let fd = open(dir.file("pid"), O_WRONLY | O_TRUNC | O_CLOEXEC)
            #expect(fd >= 0)
            _ = "4242\n".withCString { write(fd, $0, 5) }
            close(fd)
        } else {
            try dir.write("pid.new", "4242\n")
            #expect(rename(dir.file("pid.new"), dir.file("pid")) == 0)
        }
        #expect(s.stop() == 0, "\(s.log)")
        #expect((try? String(contentsOfFile: dir.file("pid"), encoding: .utf8)) == "4242\n",
                "the pid file another process wrote was removed at exit (\(how))")
    }
}
