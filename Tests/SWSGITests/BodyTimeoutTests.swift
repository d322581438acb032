import Foundation
import Glibc
import Testing

/// A request body has a total deadline (--body-timeout), not only a wait per read: a client trickling
/// one byte now and then cannot hold the only worker.
extension SWSGIIntegration {
    @Suite struct BodyTimeout {
        @Test func tricklingBodyGets408AndTheWorkerServesTheNextClient() throws {
            try withServer(["--processes", "1", "--app", "echo", "--body-timeout", "1"]) { s throws in
                let slow = try s.connect()
                let t0 = monotonicSeconds()
                try slow.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
                let fast = try s.connect()
                try fast.send(httpGet("/"))
                // A byte every 0.3 s for 1.8 s: each wait alone is far below any per-read timeout.
                for _ in 0..<6 {
                    if (try? slow.send("x")) == nil { break }
                    usleep(300_000)
                }
                let r = try fast.readResponse(timeout: 10)
                #expect(r.status == 200, "the only worker is free again after --body-timeout")
                #expect(monotonicSeconds() - t0 < 8)
                let sr = try slow.readResponse(timeout: 5)
                #expect(sr.status == 408)
            }
        }

        @Test func zeroBodyTimeoutIsRefused() throws {
            let r = try runToExit(["--body-timeout", "0"])
            #expect(r.status != 0)
            #expect(r.output.contains("--body-timeout"))
        }
    }
}
