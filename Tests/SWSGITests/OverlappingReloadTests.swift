import Foundation
import Glibc
import Testing

/// Issue 10, item 4: HUPs while long requests run leave retiring workers behind; the site must stay up.
extension SWSGIIntegration {
    @Suite struct OverlappingReloads {
        @Test func hupStormWhileRequestsRunKeepsAWorkerAccepting() throws {
            try withServer(["--processes", "1", "--app", "sleep"]) { s throws in
                var holders: [Client] = []
                for i in 0..<14 {
                    // Each generation gets a long request, then is retired by the next HUP while it runs.
                    let c = try s.connect()
                    try c.send(httpGet("/sleep/4"))
                    holders.append(c)
                    usleep(100_000)
                    s.signal(SIGHUP)
                    #expect(s.waitForLog("reloading", count: i + 1), "HUP \(i + 1)")
                    // Once every scoreboard slot is held, the worker kept accepting is the one that just took this
                    // round's 4 s request, and the GET waits behind it (by design, up to 4 s): 10 s, not 5 (a loaded
                    // machine failed at 5).
                    let r = try s.get("/", timeout: 10)
                    #expect(r.status == 200, "after HUP \(i + 1)")
                }
                #expect(!s.log.contains("crash-looping"), "no false crash-loop blame:\n\(s.log)")
                // Reported once each time the table fills, not once per HUP or per fork.
                let reports = s.log.components(separatedBy: "scoreboard slots are held").count - 1
                #expect(reports >= 1 && reports <= 4, "\(reports) reports:\n\(s.log)")
                s.signal(SIGINT)
            }
        }
    }
}
