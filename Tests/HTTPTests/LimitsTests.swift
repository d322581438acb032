import HTTP
import Testing

@Suite struct LimitsTests {
    /// A head of exactly `size` bytes.
    func headOfSize(_ size: Int) -> [UInt8] {
        let base = "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n"
        let pad = size - base.utf8.count
        return bytes("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: pad) + "\r\n\r\n")
    }

    @Test func headExactlyAtLimitIsAccepted() {
        let limits = HTTPLimits(maxHeadBytes: 200)
        let raw = headOfSize(200)
        #expect(raw.count == 200)
        var p = HTTPRequestParser(limits: limits)
        guard case .head(_, let consumed) = p.parse(raw) else { Issue.record("no head"); return }
        #expect(consumed == 200)
        // Split at every position, too.
        for cut in 1..<raw.count {
            var q = HTTPRequestParser(limits: limits)
            #expect(q.parse(Array(raw[..<cut])) == .needMore)
            guard case .head(_, let c) = q.parse(Array(raw[cut...])) else { Issue.record("cut \(cut)"); return }
            #expect(c == raw.count - cut)
        }
    }

    @Test func headOneOverLimitIs431() {
        let limits = HTTPLimits(maxHeadBytes: 200)
        let raw = headOfSize(201)
        var p = HTTPRequestParser(limits: limits)
        let r = p.parse(raw)
        #expect(r == .error(HTTPError(.headTooLarge)))
        if case .error(let e) = r { #expect(e.status == 431) }
        for cut in 1..<raw.count {
            var q = HTTPRequestParser(limits: limits)
            var res = q.parse(Array(raw[..<cut]))
            if res == .needMore { res = q.parse(Array(raw[cut...])) }
            #expect(res == .error(HTTPError(.headTooLarge)), "cut \(cut)")
        }
    }

    @Test func oversizedPartialHeadFailsImmediately() {
        let limits = HTTPLimits(maxHeadBytes: 100)
        // No end of head in sight: fail as soon as more than 100 bytes are buffered.
        let line = bytes("GET /" + String(repeating: "a", count: 95))  // 100 bytes, no CRLF
        var p = HTTPRequestParser(limits: limits)
        #expect(p.parse(line) == .needMore)
        #expect(p.hasPartialHead)
        #expect(p.parse(bytes("b")) == .error(HTTPError(.headTooLarge)))
        var q = HTTPRequestParser(limits: limits)
        #expect(q.parse(line + bytes("b")) == .error(HTTPError(.headTooLarge)))
        // Byte by byte.
        var r = HTTPRequestParser(limits: limits)
        var last = HTTPParseResult.needMore
        var fed = 0
        while last == .needMore, fed < 1000 {
            last = r.parse(bytes("x"))
            fed += 1
        }
        #expect(last == .error(HTTPError(.headTooLarge)))
        #expect(fed == 101)
    }

    @Test func leadingEmptyLinesDoNotCountTowardHeadLimit() {
        let limits = HTTPLimits(maxHeadBytes: 200)
        let raw = bytes("\r\n\r\n") + headOfSize(200)
        var p = HTTPRequestParser(limits: limits)
        guard case .head(_, let consumed) = p.parse(raw) else { Issue.record("no head"); return }
        #expect(consumed == 204)
    }

    @Test func hasPartialHeadTracksBufferedBytes() {
        var p = HTTPRequestParser()
        #expect(!p.hasPartialHead)
        #expect(p.parse(bytes("")) == .needMore)
        #expect(!p.hasPartialHead)
        #expect(p.parse(bytes("\r\n")) == .needMore)
        #expect(!p.hasPartialHead)  // empty lines are idle, not a started request
        #expect(p.parse(bytes("GE")) == .needMore)
        #expect(p.hasPartialHead)
        guard case .head = p.parse(bytes("T / HTTP/1.1\r\nHost: h\r\n\r\n")) else { Issue.record("no head"); return }
        #expect(!p.hasPartialHead)
    }

    @Test func contentLengthOverBodyLimitIs413FromHead() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", limits: limits)?.framing == .contentLength(10))
        let e = headError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits)
        #expect(e == HTTPError(.bodyTooLarge))
        #expect(e?.status == 413)
        let unlimited = HTTPLimits(maxBodyBytes: nil)
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", limits: unlimited)?.framing
            == .contentLength(Int.max))
    }

    @Test func chunkedBodyOverLimitIs413WhileDecoding() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        let (ok, okBody) = decodeBody(.chunked, bytes("5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n"), limits: limits)
        #expect(ok == .done(consumed: 25))
        #expect(okBody.count == 10)
        // The 413 comes from the announced size, before the data arrives.
        var d = HTTPBodyDecoder(framing: .chunked, limits: limits)
        var out: [UInt8] = []
        #expect(d.decode(bytes("5\r\n12345\r\n"), into: &out) == .needMore)
        #expect(d.decode(bytes("6\r"), into: &out) == .error(HTTPError(.bodyTooLarge)))
        #expect(d.decode(bytes("\n"), into: &out) == .error(HTTPError(.bodyTooLarge)))  // sticky
        #expect(out.count == 5)
    }

    @Test func decoderRejectsContentLengthOverLimitToo() {
        let (r, _) = decodeBody(.contentLength(11), bytes("12345678901"), limits: HTTPLimits(maxBodyBytes: 10))
        #expect(r == .error(HTTPError(.bodyTooLarge)))
    }

    @Test func trailersCountAgainstHeadLimit() {
        let limits = HTTPLimits(maxHeadBytes: 20)
        let ok = bytes("1\r\na\r\n0\r\nX: 1234567890123\r\n\r\n")  // trailer section = 20 bytes
        #expect(decodeBody(.chunked, ok, limits: limits).0 == .done(consumed: ok.count))
        let big = bytes("1\r\na\r\n0\r\nX: 12345678901234\r\n\r\n")
        #expect(decodeBody(.chunked, big, limits: limits).0 == .error(HTTPError(.headTooLarge)))
    }
}
