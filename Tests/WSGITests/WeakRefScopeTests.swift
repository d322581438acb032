// Attack on issue 19, item 1: a request's objects kept through weak references. A weak reference does not
// raise the object's reference count, so a set the app can still reach must not look unkept.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    static let weakKeepApp = #"""
import threading, weakref

kept = {}

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/keep':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        # Weak references only: the app's thread can still reach the objects while they live.
        kept['write'] = weakref.ref(write)
        kept['read'] = weakref.ref(environ['wsgi.input']._read)
        kept['start_response'] = weakref.ref(start_response)
        kept['file_wrapper'] = weakref.ref(environ['wsgi.file_wrapper'])
        return [b'kept']
    if path == '/victim':
        outcome = {}
        def thread_left_by_a():
            for name, call in (('read', lambda f: f(-1)), ('write', lambda f: f(b'LEAKED-FROM-A')),
                               ('start_response', lambda f: f('200 OK', [('X-From-A', '1')]))):
                f = kept[name]()
                if f is None:
                    outcome[name] = 'gone'
                    continue
                try:
                    outcome[name] = repr(call(f))
                except OSError as e:
                    outcome[name] = 'OSError'
                except BaseException as e:
                    outcome[name] = type(e).__name__
        t = threading.Thread(target=thread_left_by_a)
        t.start()
        t.join()
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'B got: ' + body + b' | ' + repr(sorted(outcome.items())).encode()]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']
"""#

    @Suite struct WeakRefScope {
        /// Objects of request A reached through weak references by A's thread during B's POST: none may act on B.
        @Test func weaklyKeptObjectsCannotReachTheNextRequest() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/weak.py"], setUp: { dir in
                try dir.write("weak.py", WSGIIntegration.weakKeepApp)
                return [:]
            }) { s, _ throws in
                #expect(try post(s, "/keep", body: Array("A".utf8)).text == "kept")
                for round in 0..<3 {
                    let b = try post(s, "/victim", body: Array("SECRET-OF-B".utf8))
                    #expect(b.status == 200)
                    #expect(!b.text.contains("LEAKED-FROM-A"), "round \(round): A's write() reached B's response: \(b.text)")
                    #expect(b.text.hasPrefix("B got: SECRET-OF-B |"), "round \(round): B reads its whole body: \(b.text)")
                    #expect(!b.text.contains("('read', \"b'SECRET"), "round \(round): A's read() returned B's body: \(b.text)")
                    #expect(b.header("X-From-A") == nil)
                    for name in ["read", "write", "start_response"] {
                        #expect(b.text.contains("('\(name)', 'OSError')") || b.text.contains("('\(name)', 'gone')"),
                                "round \(round): A's \(name) refuses or is gone: \(b.text)")
                    }
                }
            }
        }
    }
}
