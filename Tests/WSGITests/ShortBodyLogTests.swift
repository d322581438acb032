// Attack on issue 19, item 8 (logs): a response cut short of the app's Content-Length is logged with the
// body bytes that did go out, not 0B.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    static let shortBodyApp = #"""
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '100')])
    if environ['PATH_INFO'] == '/gen':
        def gen():
            yield b'hello\n'
            yield b'world\n'
        return gen()
    return [b'hello\n']
"""#

    @Suite struct ShortBodyLog {
        @Test func aBodyShortOfItsContentLengthIsLoggedWithTheBytesSent() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/short.py"], setUp: { dir in
                try dir.write("short.py", WSGIIntegration.shortBodyApp)
                return [:]
            }) { s, _ throws in
                for (path, bytes) in [("/list", 6), ("/gen", 12)] {
                    let c = try s.connect()
                    try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
                    _ = try? c.readResponse(timeout: 5)  // cut short: the connection closes
                    #expect(s.waitForLog("GET \(path) 200 "), "logged:\n\(s.log)")
                    let line = s.logLines.first { $0.contains("GET \(path) 200 ") } ?? ""
                    #expect(line.contains(" 200 \(bytes)B "), "the \(bytes) body bytes sent are logged: \(line)")
                    #expect(line.contains("Content-Length 100"), "and why the response is incomplete: \(line)")
                }
            }
        }
    }
}
