// Regression tests from the attack on the hot-path speed changes (issue 19, h19s); each failed before its fix.
import Foundation
import Glibc
import Testing
import TestSupport

extension WSGIIntegration {
    @Suite struct HotPathAttack {
        /// A head with many fields (as many as --limit-request-fields allows) costs the environ time in
        /// proportion to its fields, not their square: the check for a repeated name (the same `HTTP_*` key)
        /// scanned every earlier field for each field, so 12,000 distinct names cost 72 million comparisons
        /// (about 30 s of the worker's CPU in a debug build, 0.4 s before the change). Repeated names far apart
        /// are still joined as CGI requires.
        @Test func manyFieldsCostLinearTimeAndRepeatsStillJoin() throws {
            let args = ["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--limit-request-fields", "20000", "--buffer-size", "1m"]
            try withPython(args) { s, _ throws in
                // Names of one length, all distinct (the scan compared every pair of equal-length names).
                var head = "GET /environ HTTP/1.1\r\nHost: t\r\nX-Rep: a\r\nCookie: c=1\r\n"
                for i in 0..<12_000 { head += "X-\(String(format: "%06x", i)): v\r\n" }
                head += "x-rep: b\r\nCOOKIE: d=2\r\nX-REP: c\r\n\r\n"
                let c = try s.connect()
                try c.send(head)
                let started = monotonicSeconds()
                let r = try c.readResponse(timeout: 8)
                let took = monotonicSeconds() - started
                #expect(r.status == 200)
                let env = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                #expect(env["HTTP_X_REP"] as? String == "a, b, c")
                #expect(env["HTTP_COOKIE"] as? String == "c=1; d=2")
                #expect(env["HTTP_X_002A3F"] as? String == "v")
                #expect(took < 5, "12,000 fields took \(took) s")
            }
        }
    }
}
