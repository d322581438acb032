import Foundation
import Glibc
import Testing
import TestSupport

/// Regression tests from a fresh attack on issue 19's WSGI classes (2026-12-07 evening); each failed before its fix.
extension WSGIIntegration {
    static let edgeApp = #"""
import sys

def application(environ, start_response):
    path = environ['PATH_INFO']
    q = environ['QUERY_STRING']
    if path == '/excinfo':
        # exc_info that holds no exception (sys.exc_info() outside an except block), once the response started.
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'started;')
        ei = {'nones': (None, None, None), 'class': (ValueError('v'), None, None), 'ints': (1, 2, 3),
              'badtb': (ValueError, ValueError('v'), 'not a traceback')}[q]
        try:
            start_response('500 Internal Server Error', [], ei)
        except TypeError as e:
            write(b'caught TypeError;')
        return [b'end']
    if path == '/close-writes':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        class Result(list):
            def close(self):
                write(b'[from-close]')
        return Result([b'first,', b'second'])
    if path == '/finally-writes':
        write = start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '9')])
        def body():
            try:
                yield b'body-part'
            finally:
                write(b'[from-finally]')
        return body()
    if path == '/raise-then-close-writes':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        class Broken:
            def __iter__(self):
                return self
            def __next__(self):
                raise RuntimeError('broken iterable')
            def close(self):
                write(b'[from-close]')
        return Broken()
    if path == '/rendered':
        class Rendered(list):
            def __iter__(self):
                for part in list.__iter__(self):
                    yield part.encode('utf-8') if isinstance(part, str) else part
        start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])
        return Rendered(['h\u00e9llo ', b'world\n'])
    if path == '/upgrade':
        start_response('426 Upgrade Required', [('Upgrade', 'HTTP/3.0'), ('Connection', 'Upgrade'),
                                                ('Content-Type', 'text/plain')])
        return [b'use a newer protocol\n']
    if path == '/file-tell':
        class Upload:
            def __init__(self, p):
                self.f = open(p, 'rb')
            def read(self, n=-1):
                return self.f.read(n)
            def fileno(self):
                return self.f.fileno()
            def tell(self):
                return {'none': None, 'str': '0', 'float': 0.0, 'negative': -5}[q]
            def close(self):
                self.f.close()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](Upload(__file__))
    if path == '/bad-name':
        start_response('200 OK', [('X-Caf\u00e9', 'x')])
        return [b'x']
    if path == '/bad-status':
        start_response('200 \u00c7a\nva', [])
        return [b'x']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello\n']
"""#

    static let writeEdgeApp = writingApp("edge.py", edgeApp)

    @Suite struct AppEdgeAttack {
        static func run(_ extra: [String] = [], _ body: (Server, TempDir) throws -> Void) throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/edge.py"] + extra, setUp: WSGIIntegration.writeEdgeApp, body)
        }

        /// exc_info of no exception once the response started killed the worker (SIGSEGV in PyErr_Restore);
        /// it is a TypeError the app catches, as under gunicorn.
        @Test(arguments: ["1", "4"]) func excInfoOfNoExceptionIsATypeErrorNotACrash(threads: String) throws {
            try Self.run(["--threads", threads]) { s, _ throws in
                for q in ["nones", "class", "ints", "badtb"] {
                    let r = try s.get("/excinfo?\(q)")
                    #expect(r.status == 200)
                    #expect(String(decoding: r.body, as: UTF8.self) == "started;caught TypeError;end", "\(q): \(String(decoding: r.body, as: UTF8.self))")
                }
                #expect(!s.log.contains("SIGSEGV") && !s.log.contains("died"), "\(s.log)")
            }
        }

        /// write() from the iterable's close() or a generator's finally follows the body (gunicorn, uWSGI); it
        /// started the response ahead of the body, or (with a Content-Length) replaced it.
        @Test func writeFromCloseFollowsTheBody() throws {
            try Self.run { s, _ throws in
                var r = try s.get("/close-writes")
                #expect(String(decoding: r.body, as: UTF8.self) == "first,second[from-close]")
                r = try s.get("/finally-writes")
                #expect(String(decoding: r.body, as: UTF8.self) == "body-part")
                #expect(s.waitForLog("response body longer than its Content-Length 9: 14 byte(s) past it not sent"), "\(s.log)")
                // An iterable that fails: the answer is the 500, whatever its close() writes.
                r = try s.get("/raise-then-close-writes")
                #expect(r.status == 500, "\(r.status) \(String(decoding: r.body, as: UTF8.self))")
                r = try s.get("/")
                #expect(r.status == 200 && r.body == Array("hello\n".utf8))
            }
        }

        /// A list subclass with its own __iter__ is iterated (it was read as a plain list: its str parts 500'd).
        @Test func aListSubclassIsIteratedThroughItsIter() throws {
            try Self.run { s, _ throws in
                let r = try s.get("/rendered")
                #expect(r.status == 200)
                #expect(String(decoding: r.body, as: UTF8.self) == "h\u{e9}llo world\n")
            }
        }

        /// An Upgrade field goes out with `upgrade` in Connection (RFC 9110 §7.8): the app's option was dropped.
        @Test func theAppsConnectionOptionsGoOutBesideOurs() throws {
            try Self.run { s, _ throws in
                let c = try s.connect()
                try c.send("GET /upgrade HTTP/1.1\r\nHost: t\r\n\r\n")
                var r = try c.readResponse()
                #expect(r.status == 426)
                #expect(r.headers.filter { $0.name.lowercased() == "connection" }.map(\.value) == ["Upgrade"], "\(r.headers)")
                // Kept alive: the next request on the connection is answered.
                try c.send("GET /upgrade HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = try c.readResponse()
                #expect(r.headers.filter { $0.name.lowercased() == "connection" }.map(\.value) == ["Upgrade, keep-alive"], "\(r.headers)")
                try c.send("GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                r = try c.readResponse()
                #expect(r.headers.filter { $0.name.lowercased() == "connection" }.map(\.value) == ["Upgrade, close"], "\(r.headers)")
            }
        }

        /// A file-like whose tell() is not a position: the file is served whole by iterating it, and the error
        /// its conversion left pending no longer surfaces in the next client's request (a 500 from its start_response).
        @Test func aFileWrapperWhoseTellIsNoPositionIsIteratedAndLeavesNoError() throws {
            try Self.run { s, dir throws in
                let file = try Data(contentsOf: URL(fileURLWithPath: dir.file("edge.py")))
                for q in ["none", "str", "float", "negative"] {
                    let r = try s.get("/file-tell?\(q)")
                    #expect(r.status == 200 && r.body == Array(file), "\(q): \(r.status) \(r.body.count) bytes of \(file.count)")
                    let next = try s.get("/")
                    #expect(next.status == 200 && next.body == Array("hello\n".utf8), "after \(q): \(next.status)")
                }
                #expect(!s.log.contains("Traceback"), "\(s.log)")
            }
        }

        /// The refusal of a header name or status in latin-1 shows the app's text as Python would (it was read
        /// as UTF-8: `X-Caf\u{FFFD}`).
        @Test func latin1TextInRefusalsIsShownAsPythonWould() throws {
            try Self.run { s, _ throws in
                #expect(try s.get("/bad-name").status == 500)
                #expect(try s.get("/bad-status").status == 500)
                #expect(s.waitForLog("response header name 'X-Caf\u{e9}' is not a token"), "\(s.log)")
                #expect(s.waitForLog("status '200 \u{c7}a\\nva' has a control character"), "\(s.log)")
                #expect(!s.log.contains("\u{FFFD}"), "\(s.log)")
            }
        }
    }
}

/// With request threads, a head that times out is logged with its method and target as with one thread.
extension WSGIIntegration.AppEdgeAttack {
    @Test func aHeadTimeoutWithThreadsNamesTheRequest() throws {
        try Self.run(["--threads", "2", "--header-timeout", "1"]) { s, _ throws in
            let c = try s.connect()
            try c.send("GET /slow-client/path?x=1 HTTP/1.1\r\nHost: x\r\n")
            #expect(s.waitForLog("GET /slow-client/path?x=1 408", timeout: 10), "\(s.log)")
        }
    }
}
