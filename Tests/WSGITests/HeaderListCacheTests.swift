// The worker converts an app's response header list once and reuses it (and the field lines written for it)
// while the list holds the same items: whatever the app does to the list between requests, each response
// carries what the list holds when start_response is called.
import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    static let mutatingHeadersApp = #"""
HEADERS = [("Content-Type", "text/plain"), ("X-Step", "0")]
STEPS = {
    "/same": lambda: None,
    "/replace": lambda: HEADERS.__setitem__(1, ("X-Step", "replaced")),
    "/equal-copy": lambda: HEADERS.__setitem__(1, tuple(list(HEADERS[1]))),
    "/append": lambda: HEADERS.append(("X-Extra", "yes")),
    "/remove": lambda: HEADERS.pop(),
    "/close": lambda: HEADERS.append(("Connection", "close")),
    "/unclose": lambda: HEADERS.pop(),
    "/date": lambda: HEADERS.append(("Date", "Mon, 01 Jan 2001 00:00:00 GMT")),
    "/undate": lambda: HEADERS.pop(),
    "/reorder": lambda: HEADERS.reverse(),
}

def application(environ, start_response):
    STEPS[environ["PATH_INFO"]]()
    start_response("200 OK", HEADERS)
    return [b"ok"]
"""#

    @Suite struct HeaderListCache {
        /// One keep-alive connection, so the worker's caches see every step in order.
        @Test func eachResponseCarriesWhatTheListHoldsNow() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/headers.py"], setUp: { dir in
                var env = try writeProbe(dir)
                try dir.write("headers.py", WSGIIntegration.mutatingHeadersApp)
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                return env
            }) { s, _ throws in
                let c = try s.connect()
                func step(_ path: String) throws -> HTTPReply {
                    try c.send(httpGet(path))
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "ok", "\(path): \(r.status)")
                    return r
                }
                func names(_ r: HTTPReply) -> [String] { r.headers.map { $0.name }.filter { $0 != "Date" && $0 != "Content-Length" } }
                var r = try step("/same")
                #expect(r.header("X-Step") == "0" && names(r) == ["Content-Type", "X-Step"])
                r = try step("/same")
                #expect(r.header("X-Step") == "0" && names(r) == ["Content-Type", "X-Step"])
                r = try step("/replace")
                #expect(r.header("X-Step") == "replaced")
                r = try step("/equal-copy")
                #expect(r.header("X-Step") == "replaced" && names(r) == ["Content-Type", "X-Step"])
                r = try step("/append")
                #expect(r.header("X-Extra") == "yes" && names(r) == ["Content-Type", "X-Step", "X-Extra"])
                r = try step("/remove")
                #expect(r.header("X-Extra") == nil && names(r) == ["Content-Type", "X-Step"])
                r = try step("/reorder")
                #expect(names(r) == ["X-Step", "Content-Type"], "\(names(r))")
                r = try step("/date")
                #expect(r.headers.filter { $0.name == "Date" }.map(\.value) == ["Mon, 01 Jan 2001 00:00:00 GMT"], "\(r.headers)")
                r = try step("/undate")
                #expect(r.headers.filter { $0.name == "Date" }.count == 1 && r.header("Date") != "Mon, 01 Jan 2001 00:00:00 GMT")
                // The app's Connection: close is honoured (the connection ends); the next connection finds the
                // list without it again and stays open.
                r = try step("/close")
                #expect(r.header("Connection") == "close")
                let c2 = try s.connect()
                try c2.send(httpGet("/unclose"))
                r = try c2.readResponse(timeout: 10)
                #expect(r.status == 200 && r.header("Connection") == nil)
                try c2.send(httpGet("/same"))
                r = try c2.readResponse(timeout: 10)
                #expect(r.status == 200 && r.header("Connection") == nil && names(r) == ["X-Step", "Content-Type"])
            }
        }
    }
}
