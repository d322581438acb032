// Regression tests from the attack on the per-request CPU change (issue 11); each failed before its fix.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    static let responseHeaderApp = #"""
from urllib.parse import unquote

def application(environ, start_response):
    if environ['PATH_INFO'] == '/cl':
        body = b'hello world!!'
        try:
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', unquote(environ['QUERY_STRING']))])
        except ValueError as e:
            start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Refused', 'ValueError')])
            return [str(e).encode()]
        return [body]
    start_response('404 Not Found', [])
    return [b'']
"""#

    @Suite struct PerfChangeAttack {
        static let args = ["--processes", "1", "--wsgi-file", "{dir}/headers.py"]

        static func setUp(_ dir: TempDir) throws -> [String: String] {
            var env = try writeProbe(dir)
            try dir.write("headers.py", WSGIIntegration.responseHeaderApp)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            return env
        }

        /// A response Content-Length is 1*DIGIT (RFC 9110 §8.6): leading zeros included, however many;
        /// what is not digits (signs, exponents, hex, nothing) is refused with ValueError.
        @Test func responseContentLengthTakesAnyRunOfDigits() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                for value in ["13", "%2013%20", "%0913", "0013", "00000000000000000000013", "0000000000000000000000000000000013"] {
                    let r = try s.get("/cl?\(value)")
                    #expect(r.status == 200 && r.header("X-Refused") == nil && r.header("Content-Length") == "13"
                            && String(decoding: r.body, as: UTF8.self) == "hello world!!",
                            "Content-Length \(value): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
                }
                for value in ["", "+13", "-0", "1e3", "0x1", "99999999999999999999", "1%203"] {
                    let r = try s.get("/cl?\(value)")
                    #expect(r.status == 200 && r.header("X-Refused") == "ValueError",
                            "Content-Length \(value.debugDescription) is refused: \(r.status) \(String(decoding: r.body, as: UTF8.self))")
                }
            }
        }
    }
}
