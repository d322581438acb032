import Foundation
import Glibc
import Testing

/// Peak resident memory of a process (VmHWM), in bytes.
func peakRSS(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return nil }
    return kib * 1024
}

/// Issue 10, item 3: per-request resources are bounded by default.
extension SWSGIIntegration {
    @Suite struct BodyBounds {
        /// nginx's client_max_body_size default: bodies over 1 MiB are refused without configuration.
        @Test func defaultBodyLimitIsOneMiB() throws {
            try withServer(["--processes", "1", "--app", "echo"]) { s throws in
                let c1 = try s.connect()
                try c1.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \((1 << 20) + 1)\r\n\r\n")
                #expect(try c1.readResponse(timeout: 10).status == 413)
                // One chunk announcing 2 MiB: refused before any of it is read.
                let c2 = try s.connect()
                try c2.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\nxx")
                #expect(try c2.readResponse(timeout: 10).status == 413)
                let c3 = try s.connect()
                let body = String(repeating: "y", count: 1 << 20)
                try c3.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \(1 << 20)\r\n\r\n" + body)
                #expect(try c3.readResponse(timeout: 10).body.count == 1 << 20, "exactly 1 MiB is accepted")
                // 2 MiB in 64 KiB chunks: the streamed echo is cut at the limit, never completed.
                let c4 = try s.connect()
                let piece = "10000\r\n" + String(repeating: "x", count: 65536) + "\r\n"
                try? c4.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: piece, count: 32) + "0\r\n\r\n")
                let reply = try? c4.readResponse(timeout: 10)
                #expect(reply == nil || reply!.status == 413, "no complete 200 for a 2 MiB body")
            }
        }

        /// With the limit lifted (--limit-post 0), a 96 MiB chunked upload through --app echo streams: the
        /// worker's peak RSS stays far below the body size.
        @Test func unlimitedBodyIsStreamedNotBuffered() throws {
            try withServer(["--processes", "1", "--app", "echo", "--limit-post", "0"]) { s throws in
                let worker = s.waitWorkers(1)[0]
                let c = try s.connect()
                _ = fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK)
                let piece = [UInt8]("10000\r\n".utf8) + [UInt8](repeating: 0x7a, count: 65536) + [13, 10]
                var out = Array("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                let pieces = 96 * 16
                var sentPieces = 0, received = 0
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                let deadline = monotonicSeconds() + 40
                var finished = false
                while !finished && monotonicSeconds() < deadline {
                    if out.isEmpty && sentPieces < pieces { out = piece; sentPieces += 1; if sentPieces == pieces { out += Array("0\r\n\r\n".utf8) } }
                    var p = [pollfd(fd: c.fd, events: Int16(POLLIN) | Int16(out.isEmpty ? 0 : POLLOUT), revents: 0)]
                    _ = poll(&p, 1, 1000)
                    if p[0].revents & Int16(POLLOUT) != 0 && !out.isEmpty {
                        let n = out.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        if n > 0 { out.removeFirst(n) }
                    }
                    if p[0].revents & Int16(POLLIN | POLLHUP) != 0 {
                        let n = buf.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
                        if n > 0 { received += n; if buf[0..<n].suffix(5) == ArraySlice("0\r\n\r\n".utf8) { finished = true } }
                        if n == 0 { break }
                    }
                }
                #expect(finished, "the whole echo came back (\(received) bytes)")
                #expect(received > 96 << 20)
                let peak = peakRSS(worker) ?? .max
                #expect(peak < 48 << 20, "worker peak RSS \(peak >> 20) MiB for a 96 MiB body")
            }
        }
    }
}

/// Issue 10, HTTP strictness end to end: each refusal with its status, the worker unharmed.
extension SWSGIIntegration {
    @Suite struct StrictHTTP {
        @Test func refusalsCarryTheirStatus() throws {
            try withServer(["--processes", "1", "--app", "echo"]) { s throws in
                let worker = s.waitWorkers(1)
                let cases: [(String, Int)] = [
                    ("GET /" + String(repeating: "a", count: 5000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
                    ("GET / HTTP/1.1\r\nHost: t\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
                    ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
                    ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
                    ("GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400),
                    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
                    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 9\r\n\r\n", 400),
                ]
                for (raw, status) in cases {
                    let c = try s.connect()
                    try c.send(raw)
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == status, "\(raw.prefix(60).debugDescription)")
                }
                // An underscore field is dropped by default: the echo app never sees it.
                let c = try s.connect()
                try c.send("POST / HTTP/1.1\r\nHost: t\r\nContent_Length: 0\r\nContent-Length: 2\r\n\r\nok")
                #expect(try c.readResponse().text == "ok")
                #expect(s.workers == worker)
            }
        }

        @Test func underscoreHeadersCanBeRefused() throws {
            try withServer(["--processes", "1", "--underscore-headers", "refuse"]) { s throws in
                #expect(try s.get("/", headers: ["X_Forwarded_For: 1.2.3.4"]).status == 400)
                #expect(try s.get("/", headers: ["X-Forwarded-For: 1.2.3.4"]).status == 200)
            }
        }
    }
}
