// Attack on issue 19's worker loop: a connection the worker accepted before its bytes arrived is parked in
// epoll; if the worker then serves another client's long request, the parked client's request waits unread in
// the socket. The worker must read what the kernel holds before it judges a connection late or idle.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct ParkedConnections {
        /// The file descriptors a process holds.
        static func fdCount(_ pid: Int32) -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
        }

        /// Whether a process is blocked in nanosleep/clock_nanosleep (the sleep app inside a request).
        static func sleeping(_ pid: Int32) -> Bool {
            guard let s = try? String(contentsOfFile: "/proc/\(pid)/syscall", encoding: .utf8),
                  let n = Int(s.split(separator: " ").first ?? "") else { return false }
            return n == 35 || n == 230  // x86_64: nanosleep, clock_nanosleep
        }

        /// A is accepted and parked (nothing to read yet); B's request takes longer than --header-timeout;
        /// A's whole request arrives while B runs. Afterwards A must be answered, not reset unread.
        static func parkThenServeLong(_ s: Server, signalWhileBusy: ((Server) -> Void)? = nil) throws -> HTTPReply {
            let worker = try #require(s.waitWorkers(1).first)
            let before = fdCount(worker)
            let a = try s.connect()
            #expect(waitUntil(10) { fdCount(worker) == before + 1 }, "the worker accepted A")
            let b = try s.connect()
            try b.send("GET /sleep/2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            #expect(waitUntil(10) { sleeping(worker) }, "the worker is inside B's request")
            signalWhileBusy?(s)
            try a.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(try b.readResponse(timeout: 20).status == 200)
            return try a.readResponse(timeout: 20)
        }

        @Test func aRequestWaitingUnreadIsServedAfterALongRequest() throws {
            try withServer(["--processes", "1", "--app", "sleep", "--header-timeout", "1"]) { s throws in
                let r = try Self.parkThenServeLong(s)
                #expect(r.status == 200, "A's request arrived in time; the worker was busy, not the client slow")
            }
        }

        @Test func aRetiringWorkerServesARequestWaitingUnread() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            // Its own process group, so the TERM reaches the workers as systemd's KillMode=control-group sends it.
            let s = try Server(["--processes", "1", "--app", "sleep"], dir: dir, newProcessGroup: true)
            defer { s.stop() }
            do {
                // A TERM to the whole group while B runs: after B the worker drains C from the listen queue and
                // serves it, which takes longer than the retire grace; A waited on a connection it already held.
                var c: Client?
                let r = try Self.parkThenServeLong(s) { s in
                    c = try? s.connect()
                    try? c?.send("GET /sleep/1 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
                    s.signalGroup(SIGTERM)
                }
                #expect(try #require(c).readResponse(timeout: 20).status == 200, "C was queued before the TERM")
                #expect(r.status == 200, "A's request was queued on a connection the retiring worker held")
                #expect(s.waitExit(timeout: 20) == 0, "log:\n\(s.log)")
            }
        }
    }
}
