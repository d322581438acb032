import Testing
import TestSupport

/// start_response against an app that frees or changes its arguments while start_response reads them
/// (attack helper-53, 2026-12-08); each failed before its fix: a use-after-free, two worker crashes.
extension WSGIIntegration {
    static let hostileStartResponseApp = #"""
import functools

HOOK = []

class FreeingStatus(str):
    """A status whose finaliser runs Python code: swsgi releases the previous status inside start_response."""
    def __del__(self):
        while HOOK:
            HOOK.pop()()

CLEARED = []

class ClearingName(str):
    """A header name whose finaliser empties the list being read (swsgi's text cache lets go of it mid-loop)."""
    def __del__(self):
        CLEARED.clear()

class FakeList:
    """Claims to be a list; PyList_Size fails on it."""
    __class__ = property(lambda self: list)

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/prime-status':
        start_response(FreeingStatus('200 OK'), [])
        return [b'primed\n']
    if path == '/partial':
        # functools.partial passes its own argument array in place (vectorcall); the hook drops it while
        # start_response runs, which frees the header list unless start_response holds it.
        p = functools.partial(start_response, '201 Created', [('X-Mine', 'v' + str(len(environ)))])
        keep = []
        def hook():
            p.__setstate__((start_response, (), {}, None))
            keep.extend([[('X-Evil', 'never-passed')] for _ in range(200)])
        HOOK.append(hook)
        p()
        return [b'done\n']
    if path == '/prime-name':
        start_response('200 OK', [(ClearingName('X-D'), 'v')])
        return [b'primed\n']
    if path == '/flush':
        start_response('200 OK', [('X-F', 'f')])
        return [b'flushed\n']
    if path == '/cleared':
        CLEARED[:] = [('X-%d' % i, 'v%d' % i) for i in range(40)]
        start_response('200 OK', CLEARED)
        return [b'done\n']
    if path == '/fake-list':
        start_response('200 OK', FakeList())
        return [b'unreachable']
    if path == '/keywords':
        try:
            start_response(status='200 OK', headers=[])
        except TypeError as e:
            body = str(e).encode()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]
    start_response('200 OK', [])
    return [str(__import__('os').getpid()).encode()]
"""#

    static let writeHostileStartResponseApp = writingApp("hostile.py", hostileStartResponseApp)

    @Suite struct HostileStartResponse {
        static func run(_ body: (Server, TempDir) throws -> Void) throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/hostile.py"], setUp: WSGIIntegration.writeHostileStartResponseApp, body)
        }

        /// The arguments are held for the call: a header list freed by Python code that runs inside start_response
        /// (through functools.partial) is never read after it is gone. gunicorn and uWSGI send `X-Mine`.
        @Test func argumentsFreedDuringTheCallAreNotRead() throws {
            try Self.run { s, _ throws in
                let pid = try s.get("/pid").text
                for _ in 0..<3 {
                    #expect(try s.get("/prime-status").status == 200)
                    let r = try s.get("/partial")
                    #expect(r.status == 201, "\(r.status) \(r.headers)")
                    #expect(r.header("X-Mine") != nil && r.header("X-Evil") == nil, "\(r.headers)")
                }
                #expect(try s.get("/pid").text == pid, "the worker is the same; log:\n\(s.log)")
            }
        }

        /// A header list emptied mid-read by a finaliser, and an object that only claims to be a list: an error the
        /// app sees (500 and its line), never a crash of the worker.
        @Test func aListChangedOrFakedIsAnErrorNotACrash() throws {
            try Self.run { s, _ throws in
                let pid = try s.get("/pid").text
                #expect(try s.get("/prime-name").status == 200)
                #expect(try s.get("/flush").status == 200)
                let cleared = try s.get("/cleared")
                #expect(cleared.status == 200 || cleared.status == 500, "\(cleared.status)")
                #expect(try s.get("/fake-list").status == 500)
                #expect(try s.get("/pid").text == pid, "the worker is the same; log:\n\(s.log)")
                #expect(s.log.contains("response_headers must be a list"), "\(s.log)")
            }
        }

        /// Keyword arguments are refused in start_response's own words (not `PyCapsule.start_response()`).
        @Test func keywordArgumentsAreRefusedByName() throws {
            try Self.run { s, _ throws in
                let r = try s.get("/keywords")
                #expect(r.text == "start_response() takes no keyword arguments", "\(r.text)")
            }
        }
    }
}
