// A refused request's target is logged cut short: an attacker's 8 KB target must not become an 8 KB log line.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct RefusedTargetLog {
        @Test func anOversizedTargetIsLoggedTruncatedWithItsLength() throws {
            try withServer(["--processes", "1", "--app", "echo"]) { s throws in
                let cases: [(String, String, Int)] = [
                    ("a", "GET /" + String(repeating: "a", count: 7900) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
                    ("b", "GET /" + String(repeating: "b", count: 3000) + " HTTP/1.1\r\nHost: t\r\n"
                        + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
                    ("c", "GET /" + String(repeating: "c", count: 3000) + " HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
                ]
                for (letter, raw, status) in cases {
                    let c = try s.connect()
                    try c.send(raw)
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == status)
                    let marker = "GET /" + String(repeating: letter, count: 100)
                    #expect(s.waitForLog(marker), "logged:\n\(s.log.suffix(2000))")
                    let line = s.logLines.first { $0.contains(marker) } ?? ""
                    #expect(line.utf8.count < 600, "a \(line.utf8.count)-byte log line for a refused \(status)")
                    #expect(line.contains(" \(status) "), "\(line.prefix(400))")
                    let length = raw.split(separator: " ")[1].utf8.count
                    #expect(line.contains("\(length) bytes"), "the original length is logged: \(line.prefix(400))")
                }
            }
        }

        /// Every refusal made once the method and target are delimited names them in the log (not `- -`):
        /// a target form, a version, a `#` (a fragment, never sent), a byte that is not visible ASCII (escaped).
        @Test func refusalsNameTheirMethodAndTarget() throws {
            try withServer(["--processes", "1", "--app", "echo"]) { s throws in
                let cases: [(raw: [UInt8], status: Int, logged: String)] = [
                    (Array("GET * HTTP/1.1\r\nHost: t\r\n\r\n".utf8), 400, "GET * 400 "),
                    (Array("GET /v2 HTTP/2.0\r\nHost: t\r\n\r\n".utf8), 505, "GET /v2 505 "),
                    (Array("GET /sp HTTP/1.1 \r\nHost: t\r\n\r\n".utf8), 400, "GET /sp 400 "),
                    (Array("CONNECT /x HTTP/1.1\r\nHost: t\r\n\r\n".utf8), 400, "CONNECT /x 400 "),
                    (Array("GET /admin#/../public HTTP/1.1\r\nHost: t\r\n\r\n".utf8), 400, "GET /admin#/../public 400 "),
                    (Array("GET /".utf8) + [0xE9] + Array(" HTTP/1.1\r\nHost: t\r\n\r\n".utf8), 400, "GET /\\xE9 400 "),
                ]
                for c in cases {
                    let client = try s.connect()
                    try client.send(c.raw)
                    #expect(try client.readResponse(timeout: 5).status == c.status, "\(c.logged)")
                    #expect(s.waitForLog(c.logged), "logged:\n\(s.log.suffix(2000))")
                }
                #expect(!s.log.contains("- - "), "a refusal without its request line:\n\(s.log)")
            }
        }
    }
}
