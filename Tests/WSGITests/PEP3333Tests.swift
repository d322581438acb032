import Foundation
import Glibc
import Testing

extension WSGIIntegration {
    @Suite struct PEP3333 {
        static let probe = ["--processes", "1", "--wsgi-file", "{dir}/probe.py"]

        @Test func environHasEveryRequiredKey() throws {
            try withPython(Self.probe) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /environ/caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\n"
                           + "Content-Length: 3\r\nX-Custom-Header: v1\r\nX-Custom-Header: v2\r\nX_Spoofed: no\r\nCookie: a=1\r\nCookie: b=2\r\n\r\nabc")
                let r = try c.readResponse()
                #expect(r.status == 200)
                let env = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                #expect(env["REQUEST_METHOD"] as? String == "POST")
                #expect(env["SCRIPT_NAME"] as? String == "")
                // Percent-decoded bytes as latin-1 (PEP 3333 native strings): é is two characters.
                #expect(env["PATH_INFO"] as? String == "/environ/caf\u{C3}\u{A9}/a/b")
                #expect(env["QUERY_STRING"] as? String == "x=1&y=%20")
                #expect(env["REQUEST_URI"] as? String == "/environ/caf%C3%A9/a%2Fb?x=1&y=%20")
                #expect(env["CONTENT_TYPE"] as? String == "text/plain")
                #expect(env["CONTENT_LENGTH"] as? String == "3")
                #expect(env["HTTP_CONTENT_TYPE"] == nil && env["HTTP_CONTENT_LENGTH"] == nil)
                #expect(env["SERVER_NAME"] as? String == "example.com")
                #expect(env["SERVER_PORT"] as? String == "8080")
                #expect(env["SERVER_PROTOCOL"] as? String == "HTTP/1.1")
                #expect(env["HTTP_HOST"] as? String == "example.com:8080")
                #expect(env["HTTP_X_CUSTOM_HEADER"] as? String == "v1, v2")
                #expect(env["HTTP_COOKIE"] as? String == "a=1; b=2")
                #expect(env["HTTP_X_SPOOFED"] == nil, "a header spelled with _ must not pass for one spelled with -")
                #expect(env["wsgi.url_scheme"] as? String == "http")
                #expect(env["wsgi.version"] as? [Int] == [1, 0])
                #expect(env["wsgi.multiprocess"] as? Bool == true && env["wsgi.multithread"] as? Bool == false)
                #expect(env["wsgi.run_once"] as? Bool == false && env["wsgi.input_terminated"] as? Bool == true)
                #expect(env["input_methods"] as? [String] == ["read", "readline", "readlines", "__iter__"])
            }
        }

        @Test func inputReadlineReadlinesAndIteration() throws {
            try withPython(Self.probe) { s, _ throws in
                let r = try post(s, "/lines", body: Array("first line\nabcdef\nthird\nfourth".utf8))
                let got = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [Any])
                #expect(got[0] as? String == "first line\n")
                #expect(got[1] as? String == "abc", "readline(3) stops at 3 bytes")
                #expect(got[2] as? [String] == ["def\n", "third\n", "fourth"])
                let it = try post(s, "/iterate", body: Array("a\nb\n\nc".utf8))
                #expect(String(decoding: it.body, as: UTF8.self) == #"["a\n", "b\n", "\n", "c"]"#)
                // A chunked request body (no CONTENT_LENGTH): read() to the end works (wsgi.input_terminated).
                let c = try s.connect()
                try c.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                #expect(try c.readResponse().text == "11")
            }
        }

        @Test func responsesStreamChunkedAndKeepTheirLength() throws {
            try withPython(Self.probe) { s, dir throws in
                let stream = try s.get("/stream")
                #expect(stream.header("Transfer-Encoding") == "chunked")
                #expect(stream.text == (0..<5).map { "chunk\($0)\n" }.joined())
                #expect(waitUntil(5) { markerExists(dir, "closed-stream") }, "close() after a streamed response")
                let env = try s.get("/environ")
                #expect(env.header("Content-Length") == String(env.body.count), "the app's Content-Length is passed through")
                #expect(env.header("Transfer-Encoding") == nil)
                let w = try s.get("/write")
                #expect(w.text == "written returned\n", "write() output comes before the iterable's")
                // HEAD: the app's Content-Length, no body, close() still called.
                let c = try s.connect()
                try c.send(httpGet("/head", method: "HEAD"))
                let h = try c.readResponse(headRequest: true)
                #expect(h.status == 200 && h.header("Content-Length") == "5")
                try c.send(httpGet("/"))
                #expect(try c.readResponse().text == "hello /\n", "the connection stays usable after HEAD")
                // HTTP/1.0 client, unknown length: the body ends when the connection closes.
                let old = try s.connect()
                try old.send("GET /stream HTTP/1.0\r\n\r\n")
                let o = try old.readResponse()
                #expect(o.header("Transfer-Encoding") == nil && o.text.hasPrefix("chunk0\n") && o.text.hasSuffix("chunk4\n"))
            }
        }

        @Test func fileWrapperSendsTheFileFromItsPosition() throws {
            try withPython(Self.probe) { s, dir throws in
                let data = try probeData(dir)
                let whole = try s.get("/file")
                #expect(whole.status == 200 && whole.body == data)
                #expect(whole.header("Content-Length") == String(data.count))
                let tail = try s.get("/file?1000")
                #expect(tail.body == Array(data[1000...]))
            }
        }

        @Test func appFailuresAnswer500AndTheWorkerGoesOn() throws {
            try withPython(Self.probe + ["--disable-logging", "--log-5xx"]) { s, dir throws in
                let pid = try s.get("/pid").text
                for path in ["/raise", "/raise-in-start-response", "/bad-headers", "/crlf", "/unicode-header", "/no-start-response", "/not-iterable", "/twice", "/exit",
                             "/one-argument", "/four-arguments", "/keyword-arguments"] {
                    let r = try s.get(path)
                    #expect(r.status == 500, "\(path) answers 500")
                }
                let nonBytes = try s.get("/non-bytes")
                #expect(nonBytes.status == 500)
                #expect(waitUntil(5) { markerExists(dir, "closed-non-bytes") && markerExists(dir, "closed-no-start") },
                        "close() is called on the failure paths too")
                #expect(try s.get("/pid").text == pid, "the same worker serves on after every failure")
                let log = s.log
                #expect(log.contains("RuntimeError: the app failed on purpose"), "the traceback is in the log")
                #expect(log.contains("Traceback (most recent call last)"))
                #expect(log.contains("is not like '200 OK'"))
                #expect(log.contains("control character") && log.contains("latin-1"), "header injection and non-latin-1 values refused")
                #expect(log.contains("not a str") || log.contains("yielded str"))
                #expect(log.contains("without calling start_response"))
                #expect(log.contains("second time without exc_info"))
                #expect(log.contains("start_response() takes 2 or 3 arguments (1 given)") && log.contains("(4 given)"))
                #expect(log.contains("TypeError: start_response() takes no keyword arguments"), "as gunicorn's and uWSGI's start_response refuse them too")
                let three = try s.get("/exc-info-none")
                #expect(three.status == 200 && three.text == "three arguments\n", "exc_info=None is no exc_info")
                #expect(log.contains("SystemExit(3)"), "sys.exit in the app is reported, not obeyed")
                #expect(log.contains("GET /raise 500"), "--log-5xx keeps the 500 lines under --disable-logging")
                #expect(!log.contains("GET /pid 200"), "--disable-logging drops the others")
                // exc_info before anything is sent replaces the response.
                let replaced = try s.get("/exc-info")
                #expect(replaced.status == 503 && replaced.text == "replaced\n")
            }
        }

        @Test func aGeneratorFailingMidwayCutsTheResponseAndIsClosed() throws {
            try withPython(Self.probe) { s, dir throws in
                let c = try s.connect()
                try c.send(httpGet("/gen-raise"))
                // Headers and the first chunk went out; the chunked body never gets its last chunk.
                #expect(throws: (any Error).self) { _ = try c.readResponse(timeout: 5) }
                #expect(c.sawEOF, "the connection is closed, not left hanging")
                #expect(waitUntil(5) { markerExists(dir, "closed-gen-raise") })
                #expect(s.log.contains("ValueError: generator failed midway"))
                #expect(try s.get("/").status == 200)
            }
        }

        @Test func aClientGoneMidStreamStillGetsTheIterableClosed() throws {
            try withPython(Self.probe) { s, dir throws in
                let c = try s.connect()
                try c.send(httpGet("/slow-stream"))
                _ = c.fill(until: monotonicSeconds() + 5)
                #expect(!c.buffer.isEmpty)
                c.close()
                #expect(waitUntil(15) { markerExists(dir, "closed-slow") }, "close() runs when the client disappears")
                #expect(try s.get("/").status == 200)
            }
        }

        @Test func aClientGoneMidUploadGets400AndTheWorkerGoesOn() throws {
            try withPython(Self.probe) { s, _ throws in
                let c = try s.connect()
                try c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nonly a few bytes")
                c.shutdownWrite()
                let r = try c.readResponse(timeout: 10)
                #expect(r.status == 400, "\(r.status) \(r.text)")
                #expect(try s.get("/").status == 200)
            }
        }

        @Test func appOutputGoesToTheLog() throws {
            try withPython(Self.probe) { s, _ throws in
                #expect(try s.get("/print").text == "ok")
                #expect(s.waitForLog("app stdout line") && s.waitForLog("app stderr line") && s.waitForLog("wsgi.errors line"))
            }
        }

        @Test func threadsStartedByTheAppRun() throws {
            try withPython(Self.probe) { s, _ throws in
                #expect(try s.get("/thread").text == "thread ran")
            }
        }

        @Test func aShortBodyAgainstItsContentLengthClosesTheConnection() throws {
            try withPython(Self.probe) { s, _ throws in
                let c = try s.connect()
                try c.send(httpGet("/short-length"))
                #expect(throws: (any Error).self) { _ = try c.readResponse(timeout: 5) }
                #expect(c.sawEOF)
            }
        }

        @Test func theValidatorFindsNothingToSay() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/validated_probe.py"]) { s, dir throws in
                for path in ["/", "/environ", "/stream", "/write", "/file", "/exc-info"] {
                    #expect(try s.get(path).status < 600)
                }
                _ = try post(s, "/lines", body: Array("a\nb\n".utf8))
                _ = try post(s, "/upload", body: [UInt8](repeating: 1, count: 100_000))
                #expect(waitUntil(5) { markerExists(dir, "closed-stream") })
                #expect(!s.log.contains("VALIDATOR"), "wsgiref.validate warned: \(s.log)")
                #expect(!s.log.contains("AssertionError"), "wsgiref.validate failed: \(s.log)")
            }
        }
    }
}
