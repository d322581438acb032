import Foundation
import Glibc
import Testing

/// The Uid: and Gid: lines of /proc/PID/status (real, effective, saved, filesystem) and Groups:.
func credentials(_ pid: Int32) -> (uid: [Int], gid: [Int], groups: [Int])? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    func numbers(_ key: String) -> [Int] {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return [] }
        return line.dropFirst(key.count).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { Int($0) }
    }
    return (numbers("Uid:"), numbers("Gid:"), numbers("Groups:"))
}

/// Issue 10, item 7: --uid/--gid drop privileges after the listener is bound and before any app code.
extension SWSGIIntegration {
    @Suite struct PrivilegeDrop {
        static let appSource = """
            #include <stdio.h>
            #include <stdint.h>
            #include <stddef.h>
            #include <unistd.h>
            __attribute__((constructor)) static void init(void) { dprintf(2, "APP-CTOR uid=%d euid=%d\\n", (int)getuid(), (int)geteuid()); }
            typedef void (*respond_t)(void *, const uint8_t *, size_t);
            int swsgi_app_v1(const uint8_t *r, size_t n, void *ctx, respond_t respond) {
                char out[64];
                int k = snprintf(out, sizeof out, "200\\n\\nuid=%d\\n", (int)geteuid());
                respond(ctx, (const uint8_t *)out, (size_t)k);
                return 0;
            }
            """

        /// A temp dir nobody can write to, the app library compiled into it.
        static func prepare(_ dir: TempDir) throws {
            chmod(dir.path, 0o777)
            try dir.write("app.c", appSource)
            let cc = try Process.run(URL(fileURLWithPath: "/usr/bin/cc"), arguments: ["-shared", "-fPIC", "-o", dir.file("app.so"), dir.file("app.c")])
            cc.waitUntilExit()
            guard cc.terminationStatus == 0 else { throw TestFailure("cc failed (apt-get install gcc)") }
        }

        @Test func masterAndWorkersRunAsTheGivenUserBeforeAppCode() throws {
            guard getuid() == 0 else { Issue.record("needs root to test a privilege drop"); return }
            let dir = try TempDir()
            defer { dir.remove() }
            try Self.prepare(dir)
            let s = try Server(["--processes", "2", "--uid", "nobody", "--gid", "nogroup", "--app-library", "{dir}/app.so"], dir: dir)
            let r = try s.get("/")
            #expect(r.text == "uid=65534\n", "the app runs unprivileged: \(r.text)")
            #expect(s.log.contains("APP-CTOR uid=65534 euid=65534"), "the library's constructor ran after the drop:\n\(s.log)")
            #expect(!s.log.contains("APP-CTOR uid=0"))
            for pid in [s.pid] + s.workers {
                let c = credentials(pid)
                #expect(c?.uid == [65534, 65534, 65534, 65534], "pid \(pid): \(String(describing: c))")
                #expect(c?.gid == [65534, 65534, 65534, 65534], "pid \(pid): \(String(describing: c))")
                #expect(c?.groups == [65534] || c?.groups == [], "no supplementary groups of root: \(String(describing: c))")
            }
            var st = stat()
            #expect(lstat(s.socket!, &st) == 0 && st.st_uid == 65534, "the socket belongs to the service user")
            #expect(s.stop() == 0, "\(s.log)")
            #expect(!fileExists(s.socket!), "removed at exit by the unprivileged master")
        }

        @Test(arguments: [
            (["--uid", "no-such-user-x"], "no-such-user-x"),
            (["--gid", "no-such-group-x", "--uid", "nobody"], "no-such-group-x"),
            (["--uid", "4242424"], "--gid"),
            (["--uid", ""], "--uid"),
        ])
        func badUserOrGroupIsRefusedBeforeBinding(_ args: [String], _ message: String) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let (status, output) = try runToExit(args + ["--processes", "1"], socket: "s", in: dir)
            #expect(status != 0)
            #expect(output.contains(message), "\(output)")
            #expect(!fileExists(dir.file("s")))
        }
    }
}
