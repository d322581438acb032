import Foundation
import Glibc
import Testing
import TestSupport

/// Regression tests from a fresh attack on issue 19's classes (2026-12-07, late); each failed before its fix.
extension WSGIIntegration {
    static let afterResponseApp = #"""
import os, threading, time

DIR = os.path.dirname(os.path.abspath(__file__))

def wait_for(name, seconds=20):
    path = os.path.join(DIR, name)
    end = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)

def mark(name):
    open(os.path.join(DIR, name), 'w').close()

# A thread started while the app is imported (in the master): it ends the process when told to.
def exiter():
    wait_for('exit-now', 120)
    os._exit(7)
threading.Thread(target=exiter, daemon=True).start()

# The same, through a reference the module took at import (`from os import _exit`).
from os import _exit as captured_exit
def captured_exiter():
    wait_for('exit-captured', 120)
    captured_exit(6)
threading.Thread(target=captured_exiter, daemon=True).start()

class Late:
    """An iterable whose close() writes: the body's end, whether the items were empty or not."""
    def __init__(self, items, write):
        self.items = items
        self.write = write
    def __iter__(self):
        return iter(self.items)
    def close(self):
        self.write(b'LATE')

class SlowClose:
    """Flask's call_on_close, Django's request_finished: work the iterable's close() does after the response."""
    def __init__(self, body, name):
        self.it = iter([body])
        self.name = name
    def __iter__(self):
        return self.it
    def close(self):
        wait_for('release-' + self.name)
        mark('closed-' + self.name)

def application(environ, start_response):
    path = environ['PATH_INFO']
    q = environ['QUERY_STRING']
    if path == '/slow-close':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return SlowClose(b'hello', q)
    if path == '/slow-close-empty':
        start_response('204 No Content', [])
        return SlowClose(b'', q)
    if path == '/server-name':
        start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])
        return [repr((environ.get('SERVER_NAME'), environ.get('SERVER_PORT'), environ.get('HTTP_HOST'))).encode('utf-8')]
    if path == '/late':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        return Late({'empty': [], 'emptychunk': [b''], 'one': [b'one']}[q], write)
    if path == '/status':
        start_response({'600': '600 Weird', '999': '999 Nine', '700': '700'}[q], [('Content-Type', 'text/plain')])
        return [b'never sent']
    if path == '/job':
        mark('started-' + q)
        wait_for('release-' + q)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'done ' + q.encode()]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello\n']
"""#

    static let writeAfterResponseApp = writingApp("after.py", afterResponseApp)

    @Suite struct AfterResponse {
        static func run(_ extra: [String] = [], newProcessGroup: Bool = false,
                        _ body: (Server, TempDir) throws -> Void) throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/after.py"] + extra, newProcessGroup: newProcessGroup,
                           setUp: WSGIIntegration.writeAfterResponseApp, body)
        }

        /// The iterable's close() (Flask's call_on_close, Django's request_finished) runs after the response has
        /// gone out: the client had it only once close() returned (gunicorn and uWSGI send first).
        @Test func theResponseDoesNotWaitForTheIterablesClose() throws {
            try Self.run { s, dir throws in
                for (path, status, body) in [("/slow-close?a", 200, "hello"), ("/slow-close-empty?b", 204, "")] {
                    let name = String(path.split(separator: "?")[1])
                    // close() waits (up to 20 s) for a file the test makes only once it has the response.
                    let r = try s.get(path, timeout: 8)
                    #expect(r.status == status && String(decoding: r.body, as: UTF8.self) == body, "\(path): \(r.status)")
                    #expect(!FileManager.default.fileExists(atPath: dir.file("closed-" + name)), "close() ran before the response")
                    try dir.write("release-" + name, "")
                    #expect(waitUntil(10) { FileManager.default.fileExists(atPath: dir.file("closed-" + name)) }, "close() never ran")
                }
                // The connection and the worker go on as before.
                let r = try s.get("/")
                #expect(r.status == 200 && r.body == Array("hello\n".utf8))
            }
        }

        /// An immediate stop (INT to the master, or to the whole group) that comes while a request runs: the
        /// worker finishes it and starts no other, not even one already queued (it started it, then was killed).
        @Test(arguments: [false, true]) func anImmediateStopStartsNoQueuedRequest(group: Bool) throws {
            try Self.run(newProcessGroup: group) { s, dir throws in
                let a = try s.connect()
                try a.send("GET /job?a HTTP/1.1\r\nHost: t\r\n\r\n")
                try waitUntil(10, "job a started") { FileManager.default.fileExists(atPath: dir.file("started-a")) }
                // b waits in the listen queue while a runs.
                let b = try s.connect()
                try b.send("GET /job?b HTTP/1.1\r\nHost: t\r\n\r\n")
                try dir.write("release-b", "")
                if group { s.signalGroup(SIGINT) } else { s.signal(SIGINT) }
                // The worker has the signal before a ends (the master forwards it, or it came to the group).
                if !group { #expect(s.waitForLog("immediate"), "\(s.log)") }
                try dir.write("release-a", "")
                let r = try a.readResponse(timeout: 10)
                #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "done a")
                #expect(s.waitExit(timeout: 10) != nil, "swsgi did not stop; log:\n\(s.log)")
                #expect(!FileManager.default.fileExists(atPath: dir.file("started-b")), "job b started after the stop; log:\n\(s.log)")
            }
        }

        /// What close() writes is the body's end whenever the app declared no length, whether its items were
        /// empty or not (an empty iterable's close() writes were dropped, a non-empty one's sent; uWSGI sends both).
        @Test func whatCloseWritesEndsTheBodyWithOrWithoutItems() throws {
            try Self.run { s, _ throws in
                for (q, body) in [("empty", "LATE"), ("emptychunk", "LATE"), ("one", "oneLATE")] {
                    let r = try s.get("/late?\(q)")
                    #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == body, "\(q): \(String(decoding: r.body, as: UTF8.self))")
                }
                #expect(!s.log.contains("not sent"), "\(s.log)")
            }
        }

        /// A front server's Host in bytes that are not UTF-8 (uwsgi protocol, no SERVER_NAME variable): SERVER_NAME
        /// is made from the same latin-1 bytes as HTTP_HOST (it was made from a lossy UTF-8 reading: `h\u{EF}\u{BF}\u{BD}x`).
        @Test func serverNameFromAFrontServersHostKeepsItsBytes() throws {
            try Self.run(["--uwsgi-socket", "{dir}/u.sock"]) { s, dir throws in
                for (host, want) in [([0x68, 0xFF, 0x78, 0x3A, 0x38, 0x30, 0x38, 0x30] as [UInt8], "('h\u{FF}x', '8080', 'h\u{FF}x:8080')"),
                                     (Array("h\u{E9}".utf8), "('h\u{C3}\u{A9}', '80', 'h\u{C3}\u{A9}')")] {
                    var block: [UInt8] = []
                    for (k, v) in [(Array("REQUEST_METHOD".utf8), Array("GET".utf8)), (Array("PATH_INFO".utf8), Array("/server-name".utf8)),
                                   (Array("REQUEST_URI".utf8), Array("/server-name".utf8)), (Array("HTTP_HOST".utf8), host)] {
                        block += [UInt8(k.count & 0xff), UInt8(k.count >> 8)] + k + [UInt8(v.count & 0xff), UInt8(v.count >> 8)] + v
                    }
                    let c = try Client(.unix(dir.file("u.sock")))
                    try c.send([0, UInt8(block.count & 0xff), UInt8(block.count >> 8), 0] + block)
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == want, "\(String(decoding: r.body, as: UTF8.self))")
                }
            }
        }

        /// RFC 9110 §15: a status code is 100-599; `600 Weird` went out as given. Refused like any bad status: 500.
        @Test func aStatusAbove599AnswersAServerError() throws {
            try Self.run { s, _ throws in
                for q in ["600", "999", "700"] {
                    let r = try s.get("/status?\(q)")
                    #expect(r.status == 500, "\(q): \(r.status)")
                }
                #expect(s.waitForLog("status '600 Weird' is outside 100-599"), "\(s.log)")
                #expect(s.waitForLog("status '700' is outside 100-599"), "\(s.log)")
                #expect(try s.get("/").status == 200)
            }
        }

        /// A thread the app started while imported in the master calls os._exit: the master ended with its status
        /// and no word, its worker orphaned. It is refused in the master (that thread ends) with one line.
        @Test func osExitFromAnImportThreadDoesNotEndTheMaster() throws {
            try Self.run { s, dir throws in
                #expect(try s.get("/").status == 200)
                try dir.write("exit-now", "")
                #expect(s.waitForLog("the app called os._exit(7) in the master process"), "\(s.log)")
                #expect(s.exitStatus == nil, "the master ended: \(s.log)")
                #expect(try s.get("/").status == 200)
                // A reference to os._exit the module took while imported is refused the same way.
                try dir.write("exit-captured", "")
                #expect(s.waitForLog("the app called os._exit(6) in the master process"), "\(s.log)")
                #expect(s.exitStatus == nil, "the master ended: \(s.log)")
                #expect(try s.get("/").status == 200)
                #expect(s.stop() == 0, "\(s.log)")
            }
        }
    }
}
