import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct Apps {
        @Test func helloEchoAndSleep() throws {
            try withServer(["--processes", "1", "--app", "hello"]) { s throws in
                let r = try s.get("/anything?q=1")
                #expect(r.status == 200 && r.text == "Hello, World!\n")
                #expect(r.header("Content-Type") == "text/plain")
            }
            try withServer(["--processes", "1", "--app", "echo"]) { s throws in
                #expect(try s.get("/path?q=1").text == "GET /path?q=1\n")
            }
            try withServer(["--processes", "1", "--app", "sleep"]) { s throws in
                let t0 = monotonicSeconds()
                let r = try s.get("/sleep/0.3")
                #expect(r.status == 200 && r.text == "slept 0.3\n")
                #expect(monotonicSeconds() - t0 >= 0.29)
                #expect(try s.get("/sleep/abc").status == 404)
                #expect(try s.get("/nope").status == 404)
            }
        }

        /// www/ (served), secret.txt beside it (must stay unreachable).
        static func makeSite(_ dir: TempDir) throws {
            let fm = FileManager.default
            try fm.createDirectory(atPath: dir.file("www/sub"), withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dir.file("www/trap"), withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dir.file("outside"), withIntermediateDirectories: true)
            try dir.write("www/index.html", "<h1>home</h1>\n")
            try dir.write("www/style.css", "body { color: red }\n")
            try dir.write("www/logo.png", bytes: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 1, 2, 3])
            try dir.write("www/sub/index.html", "<p>sub</p>\n")
            try dir.write("www/digits.txt", "0123456789")
            try dir.write("secret.txt", "TOP SECRET\n")
            try dir.write("outside/index.html", "outside index\n")
            try fm.createSymbolicLink(atPath: dir.file("www/escape.txt"), withDestinationPath: "../secret.txt")
            try fm.createSymbolicLink(atPath: dir.file("www/outdir"), withDestinationPath: dir.file("outside"))
            try fm.createSymbolicLink(atPath: dir.file("www/inside.txt"), withDestinationPath: "digits.txt")
            // A directory inside DIR whose index.html leads outside it.
            try fm.createSymbolicLink(atPath: dir.file("www/trap/index.html"), withDestinationPath: dir.file("secret.txt"))
        }

        static let staticArgs = ["--processes", "1", "--app", "static:{dir}/www"]

        @Test func staticContentTypesAndIndex() throws {
            try withServer(Self.staticArgs, setup: Self.makeSite) { s throws in
                let html = try s.get("/index.html")
                #expect(html.status == 200 && html.text == "<h1>home</h1>\n")
                #expect(html.header("Content-Type") == "text/html; charset=utf-8")
                let css = try s.get("/style.css")
                #expect(css.header("Content-Type") == "text/css; charset=utf-8")
                let png = try s.get("/logo.png")
                #expect(png.header("Content-Type") == "image/png")
                #expect(png.body == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 1, 2, 3])
                #expect(try s.get("/").text == "<h1>home</h1>\n")
                #expect(try s.get("/sub").text == "<p>sub</p>\n")
                #expect(try s.get("/sub/").text == "<p>sub</p>\n")
                #expect(try s.get("/inside.txt").text == "0123456789", "a symlink within DIR is fine")
                #expect(try s.get("/missing.html").status == 404)
                let post = try s.connect()
                try post.send("POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
                #expect(try post.readResponse().status == 405)
                let head = try s.connect()
                try head.send(httpGet("/style.css", method: "HEAD"))
                let h = try head.readResponse(headRequest: true)
                #expect(h.status == 200 && h.header("Content-Length") == "20")
            }
        }

        @Test func staticETagAndRanges() throws {
            try withServer(Self.staticArgs, setup: Self.makeSite) { s throws in
                let full = try s.get("/digits.txt")
                let etag = try #require(full.header("ETag"))
                #expect(full.header("Accept-Ranges") == "bytes")
                let c = try s.connect()
                try c.send(httpGet("/digits.txt", headers: ["If-None-Match: \(etag)"]))
                let notModified = try c.readResponse()
                #expect(notModified.status == 304 && notModified.body.isEmpty)
                #expect(notModified.header("ETag") == etag)
                try c.send(httpGet("/digits.txt", headers: ["If-None-Match: \"other\""]))
                #expect(try c.readResponse().status == 200)

                let part = try s.get("/digits.txt", headers: ["Range: bytes=2-5"])
                #expect(part.status == 206 && part.text == "2345")
                #expect(part.header("Content-Range") == "bytes 2-5/10")
                let suffix = try s.get("/digits.txt", headers: ["Range: bytes=-3"])
                #expect(suffix.status == 206 && suffix.text == "789")
                #expect(suffix.header("Content-Range") == "bytes 7-9/10")
                let open = try s.get("/digits.txt", headers: ["Range: bytes=8-"])
                #expect(open.status == 206 && open.text == "89")
                let bad = try s.get("/digits.txt", headers: ["Range: bytes=10-20"])
                #expect(bad.status == 416)
                #expect(bad.header("Content-Range") == "bytes */10")
                // Numbers beyond Int are clamped: a huge suffix is the whole file, a huge last-pos the end.
                let hugeSuffix = try s.get("/digits.txt", headers: ["Range: bytes=-99999999999999999999"])
                #expect(hugeSuffix.status == 206 && hugeSuffix.text == "0123456789")
                let hugeEnd = try s.get("/digits.txt", headers: ["Range: bytes=7-99999999999999999999999"])
                #expect(hugeEnd.status == 206 && hugeEnd.text == "789")
                #expect(hugeEnd.header("Content-Range") == "bytes 7-9/10")
            }
        }

        /// Files above 16 MiB are streamed (chunked) from an open fd; HEAD never runs the stream.
        @Test func largeFilesStreamAndHeadLeaksNoDescriptor() throws {
            let size = (16 << 20) + 4096
            let setup: (TempDir) throws -> Void = { dir in
                try FileManager.default.createDirectory(atPath: dir.file("www"), withIntermediateDirectories: true)
                var bytes = [UInt8](repeating: 0, count: size)
                for i in stride(from: 0, to: size, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) }
                try dir.write("www/big.bin", bytes: bytes)
            }
            try withServer(Self.staticArgs, setup: setup) { s throws in
                let worker = try #require(s.waitWorkers(1).first)
                let full = try s.get("/big.bin", timeout: 20)
                #expect(full.status == 200 && full.body.count == size)
                #expect(full.body.count == size && full.body[size - 4096] == UInt8(truncatingIfNeeded: (size - 4096) >> 12))
                let tail = try s.get("/big.bin", headers: ["Range: bytes=\(size - 4096)-\(size - 4095)"])
                #expect(tail.status == 206 && tail.body == [UInt8(truncatingIfNeeded: (size - 4096) >> 12), 0])
                #expect(tail.header("Content-Range") == "bytes \(size - 4096)-\(size - 4095)/\(size)")

                func openFiles() -> Int {
                    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(worker)/fd")) ?? []).filter {
                        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(worker)/fd/\($0)"))?.hasSuffix("big.bin") == true
                    }.count
                }
                for _ in 0..<10 {
                    let c = try s.connect()
                    try c.send(httpGet("/big.bin", method: "HEAD", headers: ["Connection: close"]))
                    let h = try c.readResponse(headRequest: true)
                    #expect(h.status == 200)
                    #expect(c.closesWithoutData())
                }
                #expect(waitUntil(2) { openFiles() == 0 }, "\(openFiles()) descriptors of big.bin left open in the worker")
            }
        }

        @Test(arguments: [
            ("/../secret.txt", 400), ("/%2e%2e/secret.txt", 400), ("/sub/%2E%2E/%2e%2e/secret.txt", 400),
            ("/..%2fsecret.txt", 400), ("/escape.txt", 404), ("/outdir/index.html", 404), ("/outdir", 404),
            ("/trap", 404), ("/trap/index.html", 404), ("/%00", 400),
        ])
        func staticNeverLeavesItsDirectory(_ target: String, _ status: Int) throws {
            try withServer(Self.staticArgs, setup: Self.makeSite) { s throws in
                let r = try s.get(target)
                #expect(r.status == status, "\(target): \(r.text)")
                #expect(!r.text.contains("SECRET") && !r.text.contains("outside"))
            }
        }

        @Test(arguments: [
            (["--app", "static:/nonexistent/dir"], "--app static:/nonexistent/dir"),
            (["--app", "static:{dir}/file"], "not a directory"),
            (["--app", "bogus"], "'bogus' is not a built-in app"),
        ])
        func badAppExitsBeforeBinding(_ args: [String], _ message: String) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("file", "not a dir")
            let (status, output) = try runToExit(args + ["--processes", "1"], socket: "s", in: dir)
            #expect(status != 0)
            #expect(output.contains(message), "stderr: \(output)")
            #expect(output.split(separator: "\n").count == 1, "one clear line: \(output)")
            #expect(!fileExists(dir.file("s")), "the socket path must never appear")
        }
    }
}
