import Foundation
import Glibc
import Testing

/// A response must not wait for a request body the app did not read (found by an attack: `Content-Length:
/// 100000` with 10 bytes sent, an app answering without reading: no response for 5 s, and the one worker served
/// nobody meanwhile; a thread of the app waiting in `wsgi.input.read()` held the response back until
/// --body-timeout). gunicorn answers at once. What has arrived of the body is consumed without waiting; when
/// the rest has not, the response says `Connection: close` and the worker drops what the client still sends
/// while it closes (so the client's upload does not fail before it reads the answer).
extension WSGIIntegration.RequestScope {
    @Test(arguments: [1, 4]) func anAnswerDoesNotWaitForABodyTheAppDidNotRead(threads: Int) throws {
        try withPython(["--processes", "1", "--threads", "\(threads)", "--wsgi-file", "{dir}/scope.py"],
                       setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
            let a = try s.connect()
            defer { a.close() }
            try a.send("POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789")
            let started = monotonicSeconds()
            let reply = try a.readResponse(timeout: 4)
            #expect(reply.status == 200 && reply.text == "nr")
            #expect(monotonicSeconds() - started < 2, "answered without waiting for the body")
            #expect(reply.header("Connection")?.lowercased() == "close", "the unread rest ends the connection: \(reply.headers)")
            // Another client meanwhile: the worker is not held by the missing body.
            let b = try s.get("/", timeout: 4)
            #expect(b.status == 200)
            // The client finishes its upload (dropped by the server, not refused), then sees the end.
            try a.send([UInt8](repeating: 0x78, count: 99_990))
            #expect(a.closesWithoutData(timeout: 8), "the connection ends after the upload")
        }
    }

    @Test(arguments: [1, 4]) func aThreadWaitingInABodyReadDoesNotHoldTheResponse(threads: Int) throws {
        try withPython(["--processes", "1", "--threads", "\(threads)", "--wsgi-file", "{dir}/scope.py"],
                       setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
            let a = try s.connect()
            try a.send("POST /blocked-reader HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
            let started = monotonicSeconds()
            let reply = try a.readResponse(timeout: 4)
            #expect(reply.status == 200 && reply.text == "A")
            #expect(monotonicSeconds() - started < 2, "answered when the app returned (0.2 s), not after the body timeout")
            let b = try s.get("/", timeout: 4)
            #expect(b.status == 200)
            a.close()
            // The thread's read ends with the request: refused, never handed bytes of anything else.
            var blocked: [String: Any] = [:]
            #expect(waitUntil(10) {
                let r = try? s.get("/results")
                let all = r.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: [String: Any]] }
                blocked = all?["blocked"] ?? [:]
                return !blocked.isEmpty
            }, "the thread's read ended")
            #expect(blocked["ok"] as? Bool == false, "\(blocked)")
        }
    }
}
