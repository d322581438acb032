import HTTP
import Testing

func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

@Suite struct ResponseWriterTests {
    @Test func contentLengthResponse() {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(
            status: 200, headers: ["Content-Type": "text/plain", "X-A": "1", "X-A": "2"],
            body: .contentLength(5), to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 5\r\n\r\n")
        #expect(plan == HTTPResponsePlan(sendsBody: true, chunked: false, keepAlive: true))
    }

    @Test func appendsToExistingBuffer() {
        var out = bytes("previous")
        HTTPResponseWriter.appendHead(status: 204, body: .contentLength(0), to: &out)
        #expect(text(out) == "previousHTTP/1.1 204 No Content\r\n\r\n")
    }

    @Test func reasonPhrases() {
        #expect(HTTPResponseWriter.reasonPhrase(200) == "OK")
        #expect(HTTPResponseWriter.reasonPhrase(404) == "Not Found")
        #expect(HTTPResponseWriter.reasonPhrase(413) == "Content Too Large")
        #expect(HTTPResponseWriter.reasonPhrase(431) == "Request Header Fields Too Large")
        #expect(HTTPResponseWriter.reasonPhrase(599) == "Unknown")
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(status: 299, body: .contentLength(0), to: &out)
        #expect(text(out).hasPrefix("HTTP/1.1 299 Unknown\r\n"))
        out = []
        HTTPResponseWriter.appendHead(status: 200, reason: "Fine", body: .contentLength(0), to: &out)
        #expect(text(out).hasPrefix("HTTP/1.1 200 Fine\r\n"))
    }

    @Test func chunkedForHTTP11() {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, body: .streamed, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(plan == HTTPResponsePlan(sendsBody: true, chunked: true, keepAlive: true))
    }

    @Test func closeForHTTP11() {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(2), keepAlive: false, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        #expect(!plan.keepAlive)
    }

    @Test func http10KeepAliveAndClose() {
        var out: [UInt8] = []
        var plan = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(2), version: .http1_0, keepAlive: true, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n")
        #expect(plan.keepAlive)
        out = []
        plan = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(2), version: .http1_0, keepAlive: false, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        #expect(!plan.keepAlive)
    }

    @Test func http10StreamedFallsBackToCloseDelimited() {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, body: .streamed, version: .http1_0, keepAlive: true, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        #expect(plan == HTTPResponsePlan(sendsBody: true, chunked: false, keepAlive: false))
    }

    @Test func headResponseKeepsContentLengthWithoutBody() {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(1234), headRequest: true, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        #expect(plan == HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: true))
        out = []
        let streamed = HTTPResponseWriter.appendHead(status: 200, body: .streamed, version: .http1_0, keepAlive: true, headRequest: true, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n")
        #expect(streamed == HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: true))
    }

    @Test func forRequestOverload() throws {
        let req = try #require(head("HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(3), for: req, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n")
        #expect(plan == HTTPResponsePlan(sendsBody: false, chunked: false, keepAlive: true))
        out = []
        let closing = HTTPResponseWriter.appendHead(status: 200, body: .contentLength(3), for: req, keepAlive: false, to: &out)
        #expect(!closing.keepAlive)
        #expect(text(out).contains("Connection: close\r\n"))
        let req10 = try #require(head("GET / HTTP/1.0\r\n\r\n"))
        out = []
        #expect(!HTTPResponseWriter.appendHead(status: 200, body: .contentLength(0), for: req10, to: &out).keepAlive)
    }

    @Test func bodylessStatusesHaveNoFraming() {
        for status in [101, 204, 304] {
            var out: [UInt8] = []
            let plan = HTTPResponseWriter.appendHead(status: status, body: .contentLength(10), to: &out)
            #expect(!text(out).contains("Content-Length"))
            #expect(!plan.sendsBody)
        }
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(status: 304, body: .streamed, to: &out)
        #expect(text(out) == "HTTP/1.1 304 Not Modified\r\n\r\n")
    }

    /// RFC 9110 §15.3.6: a 205 carries no content; its framing is read (it is not 204 or 304), so it says
    /// Content-Length: 0 whatever body, length or HEAD-ness it is given.
    @Test func resetContentSendsNoContentAndSaysSo() {
        for body in [HTTPResponseBody.contentLength(2), .contentLength(0), .streamed] {
            for version in [HTTPVersion.http1_1, .http1_0] {
                var out: [UInt8] = []
                let plan = HTTPResponseWriter.appendHead(status: 205, body: body, version: version, to: &out)
                #expect(!plan.sendsBody && !plan.chunked, "\(body) \(version)")
                #expect(plan.keepAlive, "\(body) \(version): Content-Length: 0 frames it")
                #expect(text(out).contains("\r\nContent-Length: 0\r\n"), "\(text(out))")
                #expect(!text(out).contains("Transfer-Encoding"), "\(text(out))")
            }
        }
        #expect(HTTPResponseWriter.sendsNoContent(205) && !HTTPResponseWriter.isBodyless(205))
    }

    /// Response header names are tokens, by the rule request names are parsed with (RFC 9110 §5.1).
    @Test func responseHeaderNamesAreTokens() {
        for bad in ["X(A)", "X\"A", "X/A", "X=A", "X@A", "X,A", "X{A}", "X[A]", "X\\A", "X;A", "X?A", "X A", "X:A", "", "X\u{E9}"] {
            #expect(!isFieldName(bad), "\(bad.debugDescription)")
            var h = HTTPHeaders()
            h.append("X-Ok", "1")
            h.append(bad, "v")
            #expect(HTTPResponseWriter.firstInvalidFieldName(h) == bad)
        }
        #expect(isFieldName("X!#$%&'*+-.^_`|~Az09"))
        #expect(HTTPResponseWriter.firstInvalidFieldName(["Content-Type": "a/b", "X-A": "1"]) == nil)
    }

    @Test func framingFieldsFromCallerAreDropped() {
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(
            status: 200,
            headers: ["content-length": "999", "Transfer-Encoding": "gzip", "CONNECTION": "upgrade", "X": "y"],
            body: .contentLength(1), to: &out)
        // (The caller's other Connection options go out in the writer's own Connection field: RFC 9110 §7.8.)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 1\r\nConnection: upgrade\r\n\r\n")
    }

    @Test func controlBytesAreNeutralised() {
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(
            status: 200, reason: "O\r\nK", headers: ["X-Evil": "a\r\nSet-Cookie: x=1", "T": "a\tb"],
            body: .contentLength(0), to: &out)
        #expect(text(out) == "HTTP/1.1 200 O  K\r\nX-Evil: a  Set-Cookie: x=1\r\nT: a\tb\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func continueResponse() {
        #expect(text(HTTPResponseWriter.continueResponse) == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test func chunkHelpers() {
        #expect(text(HTTPResponseWriter.chunk(bytes("hello"))) == "5\r\nhello\r\n")
        #expect(HTTPResponseWriter.chunk([]).isEmpty)
        #expect(text(HTTPResponseWriter.chunk([UInt8](repeating: 0x61, count: 255))).hasPrefix("ff\r\n"))
        #expect(text(HTTPResponseWriter.chunk([UInt8](repeating: 0x61, count: 4096))).hasPrefix("1000\r\n"))
        #expect(text(HTTPResponseWriter.lastChunk) == "0\r\n\r\n")
        var out: [UInt8] = []
        HTTPResponseWriter.appendChunkHeader(count: 26, to: &out)
        #expect(text(out) == "1a\r\n")
    }

    @Test func chunkedOutputRoundTripsThroughDecoder() {
        var rng = SplitMix64(seed: 7)
        var wire: [UInt8] = []
        var expected: [UInt8] = []
        for _ in 0..<50 {
            let piece = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            expected += piece
            piece.withUnsafeBytes { HTTPResponseWriter.appendChunk($0, to: &wire) }
        }
        wire += HTTPResponseWriter.lastChunk
        let (r, out) = decodeBody(.chunked, wire, limits: HTTPLimits(maxBodyBytes: nil))
        #expect(r == .done(consumed: wire.count))
        #expect(out == expected)
    }

    @Test func errorResponses() {
        let dated = text(HTTPResponseWriter.errorResponse(status: 400, date: Array("Sun, 06 Nov 1994 08:49:37 GMT".utf8)))
        #expect(dated.hasPrefix("HTTP/1.1 400 Bad Request\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: "), "refusals carry Date")
        let r = text(HTTPResponseWriter.errorResponse(status: 400))
        #expect(r == "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n")
        let e = text(HTTPResponseWriter.errorResponse(for: HTTPError(.headTooLarge)))
        #expect(e.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(e.hasSuffix("\r\n\r\n431 Request Header Fields Too Large\n"))
        #expect(e.contains("Content-Length: 36\r\n"))
    }

    @Test func writtenRequestLikeBytesParseBack() throws {
        // The writer's field syntax is what the parser accepts (sanity on CRLF handling).
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(status: 200, headers: ["Host": "h", "A": " spaced "], body: .contentLength(0), to: &out)
        let asRequest = bytes("GET / HTTP/1.1\r\n") + Array(out.drop(while: { $0 != 0x0A }).dropFirst())
        var p = HTTPRequestParser()
        guard case .head(let h, let c) = p.parse(asRequest) else { Issue.record("no head"); return }
        #expect(c == asRequest.count)
        #expect(h.headers.first("a") == "spaced")
        #expect(h.framing == .contentLength(0))
    }

    // Issue 19: PEP 3333 bytes, the app's Connection and Keep-Alive, Date.
    @Test func rawValuesAndReasonsGoOutAsTheirBytes() {
        var out: [UInt8] = []
        var h = HTTPHeaders()
        h.fields.append(HTTPField(name: "Content-Disposition", value: "caf\u{E9}", rawValue: [0x63, 0x61, 0x66, 0xE9]))
        HTTPResponseWriter.appendHead(status: 299, rawReason: Array("Custom Thing".utf8), headers: h, body: .contentLength(0), to: &out)
        #expect(out == Array("HTTP/1.1 299 Custom Thing\r\nContent-Disposition: caf".utf8) + [0xE9] + Array("\r\nContent-Length: 0\r\n\r\n".utf8))
        out = []
        HTTPResponseWriter.appendHead(status: 200, rawReason: [0x4F, 0x0D, 0x0A, 0x4B], body: .contentLength(0), to: &out)
        #expect(text(out).hasPrefix("HTTP/1.1 200 O  K\r\n"), "raw reasons are sanitised too")
    }

    @Test func callersConnectionCloseIsHonouredAndKeepAliveDropped() {
        for value in ["close", "Close", "keep-alive, close"] {
            var out: [UInt8] = []
            let plan = HTTPResponseWriter.appendHead(status: 200, headers: ["Connection": value], body: .contentLength(0), to: &out)
            #expect(!plan.keepAlive, "\(value)")
            #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        var out: [UInt8] = []
        var plan = HTTPResponseWriter.appendHead(status: 200, headers: ["Connection": " upgrade ,CLOSE"], body: .contentLength(0), to: &out)
        #expect(!plan.keepAlive)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: upgrade, close\r\n\r\n")
        out = []
        plan = HTTPResponseWriter.appendHead(status: 200, headers: ["Keep-Alive": "timeout=5", "Connection": "closed"],
                                             body: .contentLength(0), to: &out)
        #expect(plan.keepAlive, "`closed` is not `close`")
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: closed\r\n\r\n")
        // Options naming the framing fields, and what is no token, stay out; repeats go once.
        out = []
        plan = HTTPResponseWriter.appendHead(status: 200, headers: ["Connection": "Content-Length, transfer-encoding, a b, x", "connection": "X, y"],
                                             body: .contentLength(0), to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x, y\r\n\r\n")
    }

    @Test func dateIsIMFFixdate() {
        #expect(text(HTTPDate.format(epochSeconds: 784111777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(text(HTTPDate.format(epochSeconds: 0)) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(text(HTTPDate.format(epochSeconds: 951782400)) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(text(HTTPDate.format(epochSeconds: 4102444799)) == "Thu, 31 Dec 2099 23:59:59 GMT")
        let date = HTTPDate.format(epochSeconds: 784111777)
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(status: 200, body: .contentLength(0), date: date, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n")
        // The caller's own Date is sent instead, never beside it.
        out = []
        HTTPResponseWriter.appendHead(status: 200, headers: ["DATE": "Mon, 07 Nov 1994 08:49:37 GMT"], body: .contentLength(0), date: date, to: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nDATE: Mon, 07 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n")
    }
}

/// The field-lines cache writes exactly what `appendHead` writes without it, for the same fields and for
/// changed ones (a copy-on-write change makes new storage, which the cache must not take for the old).
@Suite struct FieldLinesCacheTests {
    func head(_ headers: HTTPHeaders, _ cache: HTTPFieldLinesCache?, keepAlive: Bool = true) -> ([UInt8], HTTPResponsePlan) {
        var out: [UInt8] = []
        let plan = HTTPResponseWriter.appendHead(status: 200, headers: headers, body: .contentLength(2), keepAlive: keepAlive,
                                                 date: Array("Thu, 01 Jan 2026 00:00:00 GMT".utf8), fieldLines: cache, to: &out)
        return (out, plan)
    }

    @Test func sameAsWithoutTheCacheWhateverTheFieldsBecome() {
        let cache = HTTPFieldLinesCache()
        var h: HTTPHeaders = ["Content-Type": "text/plain", "X-A": "1"]
        var variants: [HTTPHeaders] = [h, h, [:], h]
        h.fields[1].value = "2"
        variants.append(h)
        h.append("Connection", "close")
        variants.append(h)
        h.fields.removeLast()
        variants.append(h)
        h.append("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
        variants.append(h)
        h.fields.removeLast()
        h.append("X-Bad", "a\r\nb")
        variants.append(h)
        variants.append(h)
        for (i, headers) in variants.enumerated() {
            for keepAlive in [true, false] {
                let plain = head(headers, nil, keepAlive: keepAlive), cached = head(headers, cache, keepAlive: keepAlive)
                #expect(plain.0 == cached.0, "variant \(i): \(text(cached.0)) instead of \(text(plain.0))")
                #expect(plain.1 == cached.1, "variant \(i)")
            }
        }
    }
}
