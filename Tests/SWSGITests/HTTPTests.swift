import Foundation
import Glibc
import Testing

/// Waits (via the stats socket) until `n` workers run a request; their stats entries.
func waitBusy(_ s: Server, stats: String, count n: Int, timeout: Double = 5) throws -> [[String: Any]] {
    var busy: [[String: Any]] = []
    let ok = waitUntil(timeout) {
        busy = statsWorkers((try? readStats(stats)) ?? [:]).filter { $0["status"] as? String == "busy" }
        return busy.count >= n
    }
    guard ok else { throw TestFailure("\(n) busy workers not seen within \(timeout) s; log:\n\(s.log)") }
    return busy
}

extension SWSGIIntegration {
    /// One worker must serve many keep-alive connections: idle ones are parked, never pinning it.
    @Suite struct KeepAlive {
        @Test func idleKeepAliveConnectionsDoNotPinTheWorker() throws {
            try withServer(["--processes", "1", "--app", "sleep", "--stats", "{dir}/stats"]) { s throws in
                let worker = s.waitWorkers(1)
                var parked: [Client] = []
                for i in 0..<5 {
                    let c = try s.connect()
                    try c.send(httpGet("/sleep/0"))
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == 200, "connection \(i)")
                    #expect(r.header("Connection") == nil, "keep-alive is the HTTP/1.1 default")
                    parked.append(c)
                }
                // A sixth client is served promptly although five connections sit idle.
                let t0 = monotonicSeconds()
                let r = try s.get("/sleep/0", timeout: 3)
                #expect(r.status == 200)
                #expect(monotonicSeconds() - t0 < 1.5)

                // One parked connection holds the worker for a second; requests on the others wait, then all are served.
                try parked[0].send(httpGet("/sleep/1"))
                _ = try waitBusy(s, stats: s.dir.file("stats"), count: 1)
                for c in parked[1...] { try c.send(httpGet("/sleep/0")) }
                let waiting = parked[1...].filter { $0.fill(until: monotonicSeconds() + 0.2) && !$0.buffer.isEmpty }
                #expect(waiting.isEmpty, "nothing may be answered while the only worker sleeps")
                let slow = try parked[0].readResponse(timeout: 5)
                #expect(slow.status == 200 && slow.text == "slept 1\n")
                for (i, c) in parked[1...].enumerated() {
                    let reply = try c.readResponse(timeout: 5)
                    #expect(reply.status == 200 && reply.text == "slept 0\n", "parked connection \(i + 1)")
                }
                // And every one of them is still usable.
                for c in parked {
                    try c.send(httpGet("/sleep/0"))
                    #expect(try c.readResponse(timeout: 5).status == 200)
                }
                #expect(s.workers == worker, "the worker is the same process throughout")
            }
        }
    }

    /// HTTP/1.1 over the Unix socket, end to end.
    @Suite struct HTTP11 {
        static let args = ["--processes", "2", "--app", "echo"]

        @Test func contentLengthAndChunkedBodiesOnOneConnection() throws {
            try withServer(Self.args) { s throws in
                let c = try s.connect()
                try c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world")
                let a = try c.readResponse()
                #expect(a.status == 200 && a.text == "hello world")
                #expect(a.header("Content-Type") == "text/x-test")
                #expect(a.header("Content-Length") == "11")

                try c.send("POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
                let b = try c.readResponse()
                #expect(b.status == 200 && b.text == "hello world")

                // The body arriving in pieces, after the head.
                try c.send("PUT /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nab")
                usleep(50_000)  // deliberately split across reads; the result does not depend on timing
                try c.send("cdef")
                #expect(try c.readResponse().text == "abcdef")

                try c.send(httpGet("/after"))
                #expect(try c.readResponse().text == "GET /after\n")
            }
        }

        @Test func pipelinedRequestsAreAnsweredInOrder() throws {
            try withServer(Self.args) { s throws in
                let c = try s.connect()
                try c.send(httpGet("/first") + httpGet("/second") + "POST /third HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + httpGet("/fourth"))
                #expect(try c.readResponse().text == "GET /first\n")
                #expect(try c.readResponse().text == "GET /second\n")
                #expect(try c.readResponse().text == "abc")
                #expect(try c.readResponse().text == "GET /fourth\n")
            }
        }

        @Test func connectionCloseIsHonoured() throws {
            try withServer(Self.args) { s throws in
                let c = try s.connect()
                try c.send(httpGet("/bye", headers: ["Connection: close"]) + httpGet("/ignored"))
                let r = try c.readResponse()
                #expect(r.status == 200 && r.text == "GET /bye\n")
                #expect(r.header("Connection")?.lowercased() == "close")
                #expect(c.closesWithoutData(), "no answer to a request after Connection: close")

                // HTTP/1.0 keeps the connection only when asked to.
                let k = try s.connect()
                try k.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let ka = try k.readResponse()
                #expect(ka.text == "GET /a\n" && ka.header("Connection")?.lowercased() == "keep-alive")
                #expect(try k.readResponse().text == "GET /b\n")

                // HTTP/1.0 without keep-alive closes.
                let d = try s.connect()
                try d.send("GET /old HTTP/1.0\r\n\r\n")
                #expect(try d.readResponse().text == "GET /old\n")
                #expect(d.closesWithoutData())
            }
        }

        @Test func headHasContentLengthButNoBody() throws {
            try withServer(Self.args) { s throws in
                let c = try s.connect()
                try c.send(httpGet("/x", method: "HEAD") + httpGet("/y"))
                let head = try c.readResponse(headRequest: true)
                #expect(head.status == 200)
                #expect(head.header("Content-Length") == "8", "as for GET /x: \"HEAD /x\\n\"")
                // The next bytes must be the second response's status line, not a body.
                let next = try c.readResponse()
                #expect(next.status == 200 && next.text == "GET /y\n")
            }
        }

        @Test func expectContinueIsSentBeforeTheBodyIsRead() throws {
            try withServer(Self.args) { s throws in
                let c = try s.connect()
                try c.send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                let interim = try c.readResponse(timeout: 5)
                #expect(interim.status == 100)
                try c.send("hello")
                let final = try c.readResponse()
                #expect(final.status == 200 && final.text == "hello")
                try c.send(httpGet("/again"))
                #expect(try c.readResponse().text == "GET /again\n")
            }
        }

        struct BadRequest: CustomTestStringConvertible, Sendable {
            let name: String
            let bytes: String
            let status: Int
            var testDescription: String { name }
        }

        static let badRequests: [BadRequest] = [
            .init(name: "head over --buffer-size", bytes: "GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n", status: 431),
            .init(name: "Content-Length over --limit-post",
                  bytes: "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n\(String(repeating: "b", count: 200))", status: 413),
            .init(name: "Expect: 100-continue with a body over --limit-post (no 100 first)",
                  bytes: "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\nExpect: 100-continue\r\n\r\n", status: 413),
            .init(name: "chunked body over --limit-post",
                  bytes: "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nc8\r\n\(String(repeating: "c", count: 200))\r\n0\r\n\r\n", status: 413),
            .init(name: "Content-Length with Transfer-Encoding",
                  bytes: "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400),
            .init(name: "differing Content-Length",
                  bytes: "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400),
            .init(name: "bare CR", bytes: "GET / HTTP/1.1\r\nHost: t\rX-A: b\r\n\r\n", status: 400),
            .init(name: "obs-fold", bytes: "GET / HTTP/1.1\r\nHost: t\r\nX-A: b\r\n  folded\r\n\r\n", status: 400),
        ]

        static let limitArgs = args + ["--buffer-size", "1024", "--limit-post", "100", "--header-timeout", "1"]

        @Test(arguments: badRequests)
        func badRequestGetsItsStatusAndTheConnectionCloses(_ bad: BadRequest) throws {
            try withServer(Self.limitArgs) { s throws in
                let before = s.waitWorkers(2)
                let c = try s.connect()
                try c.send(bad.bytes)
                let r = try c.readResponse(timeout: 5)
                #expect(r.status == bad.status)
                #expect(r.header("Connection")?.lowercased() == "close")
                #expect(c.closesWithoutData())
                // A bad request never takes a worker down.
                for _ in 0..<4 { #expect(try s.get("/ok").text == "GET /ok\n") }
                #expect(s.workers == before)
            }
        }

        @Test func incompleteHeadGets408AfterHeaderTimeout() throws {
            try withServer(Self.limitArgs) { s throws in
                let before = s.waitWorkers(2)
                let c = try s.connect()
                let t0 = monotonicSeconds()
                try c.send("GET / HTTP/1.1\r\nHost: t\r\n")
                let r = try c.readResponse(timeout: 5)
                let elapsed = monotonicSeconds() - t0
                #expect(r.status == 408)
                #expect(elapsed > 0.8 && elapsed < 3, "after --header-timeout 1: \(elapsed) s")
                #expect(c.closesWithoutData())
                #expect(try s.get("/ok").status == 200)
                #expect(s.workers == before)
            }
        }

        @Test func unreadBodyIsSkippedBeforeTheNextRequest() throws {
            // The sleep app never reads the body: the worker must consume it before parsing what follows.
            try withServer(["--processes", "1", "--app", "sleep"]) { s throws in
                let c = try s.connect()
                try c.send("POST /sleep/0 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /sleep/0 HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try c.readResponse().text == "slept 0\n")
                #expect(try c.readResponse().text == "slept 0\n")
                try c.send("POST /sleep/0 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + httpGet("/sleep/0"))
                #expect(try c.readResponse().status == 200)
                #expect(try c.readResponse().status == 200)
            }
        }

        @Test func expectContinueWithoutAReadGetsTheFinalAnswerAndClose() throws {
            // An app that never reads the body: no 100 Continue, the final response, and the connection closes
            // (the client may still be holding its body back).
            try withServer(["--processes", "1", "--app", "sleep"]) { s throws in
                let c = try s.connect()
                try c.send("POST /sleep/0 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                let r = try c.readResponse()
                #expect(r.status == 200)
                #expect(r.header("Connection")?.lowercased() == "close")
                #expect(c.closesWithoutData())
            }
        }

        @Test func idleKeepAliveConnectionClosesAfterKeepaliveTimeout() throws {
            try withServer(["--processes", "1", "--keepalive-timeout", "0.5"]) { s throws in
                let c = try s.connect()
                try c.send(httpGet("/"))
                #expect(try c.readResponse().status == 200)
                let t0 = monotonicSeconds()
                #expect(c.closesWithoutData(timeout: 5))
                let idle = monotonicSeconds() - t0
                #expect(idle > 0.4 && idle < 2, "closed after \(idle) s")
            }
        }

        @Test func bodyWithinLimitIsAccepted() throws {
            try withServer(Self.limitArgs) { s throws in
                let c = try s.connect()
                let body = String(repeating: "d", count: 100)
                try c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + body)
                #expect(try c.readResponse().text == body)
                let head = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + String(repeating: "p", count: 900) + "\r\n\r\n"
                try c.send(head)
                #expect(try c.readResponse().status == 200, "a 950-byte head fits --buffer-size 1024")
            }
        }
    }
}
