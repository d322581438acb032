// Attack on issue 19, item 8: a head refused 408 (not complete within --header-timeout) is logged with
// its method and target when its request line had arrived whole, like every other refusal.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct TimedOutHeadLog {
        @Test func aTimedOutHeadNamesItsRequestLine() throws {
            try withServer(["--processes", "1", "--app", "hello", "--header-timeout", "1"]) { s throws in
                let c = try s.connect()
                try c.send("POST /upload/slow-head HTTP/1.1\r\nHost: t\r\n")
                #expect(try c.readResponse(timeout: 10).status == 408)
                #expect(s.waitForLog(" 408 "), "logged:\n\(s.log)")
                let line = s.logLines.first { $0.contains(" 408 ") } ?? ""
                #expect(line.contains("POST /upload/slow-head 408 "), "the request line is named: \(line)")
                // A head whose request line never ended names nothing.
                let d = try s.connect()
                try d.send("GET /no-end")
                #expect(try d.readResponse(timeout: 10).status == 408)
                #expect(s.waitForLog(" 408 ", count: 2))
                #expect(s.logLines.contains { $0.contains("- - 408 ") }, "logged:\n\(s.log)")
            }
        }
    }
}
