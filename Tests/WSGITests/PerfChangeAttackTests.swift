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

        /// The environ's string caches tell keys apart byte for byte: Swift's `==` holds canonically
        /// equivalent text equal, so `café` (precomposed) must not get the SERVER_NAME (or the
        /// `HTTP_*` key) made for `cafe` + U+0301, nor the other way round. (uwsgi protocol: its
        /// variables are not limited to ASCII; no SERVER_NAME variable, so the Host names the server.)
        @Test func environCachesTellCanonicallyEquivalentTextApart() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--uwsgi-socket", "{dir}/u.sock"], socket: nil) { _, dir throws in
                func pair(_ k: [UInt8], _ v: [UInt8]) -> [UInt8] {
                    [UInt8(k.count & 0xff), UInt8(k.count >> 8)] + k + [UInt8(v.count & 0xff), UInt8(v.count >> 8)] + v
                }
                func environ(host: [UInt8], header: [UInt8]) throws -> String {
                    let vars = pair(Array("REQUEST_METHOD".utf8), Array("GET".utf8)) + pair(Array("PATH_INFO".utf8), Array("/environ".utf8))
                        + pair(Array("REQUEST_URI".utf8), Array("/environ".utf8)) + pair(Array("HTTP_HOST".utf8), host)
                        + pair(Array("HTTP_X_".utf8) + header, Array("1".utf8))
                    let c = try Client(.unix(dir.file("u.sock")))
                    try c.send([0, UInt8(vars.count & 0xff), UInt8(vars.count >> 8), 0] + vars)
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200)
                    return String(decoding: r.body, as: UTF8.self)  // json.dumps: non-ASCII as \uXXXX escapes
                }
                // "café" and "CAFÉ" precomposed (U+00E9, U+00C9), and with U+0301 after the "e"/"E".
                let composed: [UInt8] = [0x63, 0x61, 0x66, 0xC3, 0xA9], decomposed: [UInt8] = [0x63, 0x61, 0x66, 0x65, 0xCC, 0x81]
                let upperComposed: [UInt8] = [0x43, 0x41, 0x46, 0xC3, 0x89], upperDecomposed: [UInt8] = [0x43, 0x41, 0x46, 0x45, 0xCC, 0x81]
                for (first, second) in [((composed, upperComposed), (decomposed, upperDecomposed)),
                                        ((decomposed, upperDecomposed), (composed, upperComposed))] {
                    let secondName = second.0 == composed ? #""SERVER_NAME": "caf\u00c3\u00a9""# : #""SERVER_NAME": "cafe\u00cc\u0081""#
                    let firstKey = first.1 == upperComposed ? #""HTTP_X_CAF\u00c9""# : #""HTTP_X_CAFE\u0301""#
                    _ = try environ(host: first.0, header: first.1)
                    let text = try environ(host: second.0, header: second.1)
                    #expect(text.contains(secondName), "SERVER_NAME made for the other spelling: \(text)")
                    #expect(!text.contains(firstKey), "an HTTP_* key made for the other spelling: \(text)")
                }
            }
        }
    }
}
