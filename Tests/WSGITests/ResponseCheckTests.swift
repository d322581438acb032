// Attack on issue 19 (responses): what an app hands start_response and write() is checked by the rules the
// request side uses, and each refusal says what is wrong. Header names must be tokens (RFC 9110 §5.1); a str
// that cannot be encoded is named as such, not "must be a str, not str"; a body cut at its Content-Length is
// logged once with all it dropped; a 205 carries no content.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    /// Answers with the (status, headers, body) its query string spells in Python; on /w, the body goes
    /// through write(), one call per item.
    static let evalApp = #"""
import urllib.parse
def application(environ, start_response):
    q = urllib.parse.unquote(environ.get('QUERY_STRING', ''), encoding='latin-1')
    status, headers, body = eval(q)
    if environ['PATH_INFO'] == '/w':
        w = start_response(status, headers)
        for b in body:
            w(b)
        return []
    start_response(status, headers)
    return body
"""#

    /// `expression` percent-encoded for a query string (every byte but letters and digits).
    static func query(_ expression: String) -> String {
        expression.utf8.map { b in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
                ? String(UnicodeScalar(b)) : String(format: "%%%02X", b)
        }.joined()
    }

    /// The raw bytes of one response to GET `path?expression`, read until the server closes or `timeout`.
    static func rawExchange(_ s: Server, _ path: String, _ expression: String, timeout: Double = 5) throws -> [UInt8] {
        let c = try s.connect()
        try c.send("GET \(path)?\(query(expression)) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return try c.readToEnd(timeout: timeout)
    }

    @Suite struct ResponseCheck {
        static let args = ["--processes", "1", "--wsgi-file", "{dir}/ev.py", "--cache2", "name=default,items=8,blocksize=1024"]
        static func setUp(_ dir: TempDir) throws -> [String: String] {
            try dir.write("ev.py", WSGIIntegration.evalApp)
            return [:]
        }

        @Test func responseHeaderNamesThatAreNotTokensAnswer500() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                for name in ["X(A)", "X\\\"A", "X/A", "X=A", "X@A", "X,A", "X{A}", "X[A]", "X\\\\A", "X;A", "X?A"] {
                    for path in ["/", "/w"] {
                        let wire = try WSGIIntegration.rawExchange(s, path, "('200 OK', [('\(name)','v'),('Content-Length','2')], [b'hi'])")
                        let text = String(decoding: wire, as: UTF8.self)
                        #expect(text.hasPrefix("HTTP/1.1 500 "), "\(name) on \(path): \(text)")
                        #expect(!text.contains(": v\r\n"), "\(name) on \(path) was sent: \(text)")
                    }
                }
                #expect(s.waitForLog("is not a token", count: 22), "log:\n\(s.log)")
                // Every tchar is a name.
                let ok = try WSGIIntegration.rawExchange(s, "/", "('200 OK', [(\"X!#$%&'*+-.^_`|~Az09\",'v'),('Content-Length','2')], [b'hi'])")
                #expect(String(decoding: ok, as: UTF8.self).contains("\r\nX!#$%&'*+-.^_`|~Az09: v\r\n"), "\(String(decoding: ok, as: UTF8.self))")
            }
        }

        @Test func aStrThatCannotBeEncodedIsNamedAsSuch() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                let cases: [(expression: String, logged: String)] = [
                    (#"('200 OK', [('X-A','a\udcffb'),('Content-Length','2')], [b'hi'])"#,
                     "response header X-A's value holds a character that is not latin-1 (U+DCFF, a lone surrogate at index 1)"),
                    (#"('200 \udcff', [('Content-Length','2')], [b'hi'])"#,
                     "status holds a character that is not latin-1 (U+DCFF, a lone surrogate at index 4)"),
                    (#"('200 OK', [('X-\ud800','v'),('Content-Length','2')], [b'hi'])"#,
                     "a response header name holds a character that is not latin-1 (U+D800, a lone surrogate at index 2)"),
                    (#"('200 OK', [('X-B','\u2603')], [b'hi'])"#,
                     "response header X-B's value holds a character that is not latin-1 (U+2603 at index 0)"),
                    (#"('200 OK', [('X-C', 5)], [b'hi'])"#, "response header X-C's value must be a str, not int"),
                    (#"(__import__('uwsgi').cache_get('k\udcff'), 1, 2)"#,
                     "key holds a character that is not UTF-8 (U+DCFF, a lone surrogate at index 1)"),
                    (#"(__import__('uwsgi').cache_get(5), 1, 2)"#, "key must be bytes or str, not int"),
                    (#"(__import__('uwsgi').setprocname('x\udcff'), 1, 2)"#,
                     "argument 1 holds a character that is not UTF-8 (U+DCFF, a lone surrogate at index 1)"),
                ]
                for c in cases {
                    let wire = try WSGIIntegration.rawExchange(s, "/", c.expression)
                    #expect(String(decoding: wire, as: UTF8.self).hasPrefix("HTTP/1.1 500 "), "\(c.expression)")
                    #expect(s.waitForLog(c.logged), "\(c.expression): log:\n\(s.log.suffix(3000))")
                }
                #expect(!s.log.contains("not str"), "no 'must be a str, not str':\n\(s.log)")
            }
        }

        @Test func aBodyCutAtItsContentLengthIsLoggedOnceWithAllItDropped() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                for (path, marker) in [("/w", "hi"), ("/", "li")] {
                    let wire = try WSGIIntegration.rawExchange(s, path, "('200 OK', [('Content-Length','3'),('X-M','\(marker)')], [b'hi', b'there', b'more'])")
                    let text = String(decoding: wire, as: UTF8.self)
                    #expect(text.hasSuffix("\r\n\r\nhit"), "\(path): \(text)")
                }
                #expect(s.waitForLog("past it not sent", count: 2), "log:\n\(s.log)")
                let cuts = s.logLines.filter { $0.contains("past it not sent") }
                #expect(cuts.count == 2, "one line per response:\n\(cuts.joined(separator: "\n"))")
                #expect(cuts.allSatisfy { $0.contains("Content-Length 3: 8 byte(s) past it not sent") }, "\(cuts)")
            }
        }

        @Test func plainWordsForHeaderShapeAndLength() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                let cases: [(expression: String, logged: String)] = [
                    ("('200 OK', [('X-A','v','w')], [b'hi'])", "response header 0 is a tuple of 3 items, not a (name, value) pair"),
                    ("('200 OK', [('Content-Length','-1')], [b'hi'])", "Content-Length '-1' is negative"),
                    ("('200 OK', [('Content-Length','x')], [b'hi'])", "Content-Length 'x' is not a number"),
                ]
                for c in cases {
                    let wire = try WSGIIntegration.rawExchange(s, "/", c.expression)
                    #expect(String(decoding: wire, as: UTF8.self).hasPrefix("HTTP/1.1 500 "), "\(c.expression)")
                    #expect(s.waitForLog(c.logged), "\(c.expression): log:\n\(s.log.suffix(3000))")
                }
            }
        }

        /// RFC 9110 §15.3.6: no content in a 205, from a list, write() or a generator; Content-Length: 0 says so,
        /// and the connection carries the next response intact.
        @Test func resetContentCarriesNoContent() throws {
            try withPython(Self.args, setUp: Self.setUp) { s, _ throws in
                for (path, expression) in [("/", "('205 Reset Content', [('Content-Length','2')], [b'hi'])"),
                                           ("/w", "('205 Reset Content', [('Content-Length','2')], [b'hi'])"),
                                           ("/", "('205 Reset Content', [], iter([b'hi', b'there']))")] {
                    let c = try s.connect()
                    try c.send("GET \(path)?\(WSGIIntegration.query(expression)) HTTP/1.1\r\nHost: t\r\n\r\n"
                               + "GET /?\(WSGIIntegration.query("('200 OK', [('Content-Length','2')], [b'ok'])")) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    let text = String(decoding: try c.readToEnd(timeout: 5), as: UTF8.self)
                    #expect(text.hasPrefix("HTTP/1.1 205 Reset Content\r\n"), "\(expression): \(text)")
                    #expect(text.contains("\r\nContent-Length: 0\r\n") && !text.contains("Transfer-Encoding"), "\(expression): \(text)")
                    #expect(!text.contains("hi") && text.contains("\r\n\r\nHTTP/1.1 200 OK\r\n") && text.hasSuffix("\r\n\r\nok"), "\(expression): \(text)")
                }
            }
        }

        /// --post-buffering reads the body before the app runs: a body refused there is logged with its reason,
        /// as when the app reads it.
        @Test func postBufferingRefusalsCarryTheirReason() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/ev.py", "--post-buffering", "4096"], setUp: Self.setUp) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /pb HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                #expect(try c.readResponse(timeout: 5).status == 400)
                #expect(s.waitForLog("POST /pb 400 "), "log:\n\(s.log)")
                let line = s.logLines.first { $0.contains("POST /pb 400 ") } ?? ""
                #expect(line.contains("(") && line.contains("chunk"), "the reason: \(line)")
            }
        }
    }
}
