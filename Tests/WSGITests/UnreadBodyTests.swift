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
            // Another client meanwhile: the worker is not held by the missing body.
            let b = try s.get("/", timeout: 4)
            #expect(b.status == 200)
            // The client finishes its upload, never refused: the worker either consumed it in its short wait after
            // the answer (the connection then serves the next request) or drops it while it closes.
            try a.send([UInt8](repeating: 0x78, count: 99_990))
            try? a.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            let next = try? a.readResponse(timeout: 8)
            #expect(next?.text == "hello" || (next == nil && a.closesWithoutData(timeout: 8)), "kept and serving, or ended cleanly")
        }
    }

    /// The rest of a body that arrives just after the response (a front server streaming it: nginx with
    /// `proxy_request_buffering off`) is consumed and the connection kept (an attack: 295 of 1,600 keep-alive POSTs
    /// through such an nginx failed at the client when the answer said close).
    @Test(arguments: [1, 4]) func aBodyArrivingJustAfterTheAnswerKeepsTheConnection(threads: Int) throws {
        try withPython(["--processes", "1", "--threads", "\(threads)", "--wsgi-file", "{dir}/scope.py"],
                       setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
            let a = try s.connect()
            defer { a.close() }
            try a.send("POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n0123456789")
            let reply = try a.readResponse(timeout: 4)
            #expect(reply.status == 200 && reply.text == "nr")
            try a.send("abcdefghij")
            try a.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            let next = try a.readResponse(timeout: 4)
            #expect(next.status == 200 && next.text == "hello", "the same connection serves the next request")
        }
    }

    /// A thread of the app still in a read of the body, bytes trickling in, as its request ends: the worker must not
    /// crash (found by an attack: the buffer's pull held the request unowned: SIGABRT, every request of the worker lost).
    @Test(arguments: [1, 4]) func aThreadReadingATricklingBodyPastItsRequestDoesNotCrashTheWorker(threads: Int) throws {
        try withPython(["--processes", "1", "--threads", "\(threads)", "--wsgi-file", "{dir}/scope.py"],
                       setUp: WSGIIntegration.writeScopeApp) { s, _ throws in
            let worker = try #require(s.waitWorkers(1).first)
            let a = try s.connect()
            defer { a.close() }
            try a.send("POST /trickle-reader HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "a", count: 10))
            for _ in 0..<20 {
                usleep(50_000)  // the trickle itself (the client's pace), not a wait for the server
                try? a.send(String(repeating: "b", count: 10))
            }
            let reply = try a.readResponse(timeout: 4)
            #expect(reply.status == 200)
            #expect(try s.get("/", timeout: 4).text == "hello")
            #expect(s.workers == [worker], "the worker is still there:\n\(s.log)")
            #expect(!s.log.contains("died"), "\(s.log)")
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
