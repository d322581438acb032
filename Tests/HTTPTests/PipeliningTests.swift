import HTTP
import Testing

let pipelined: [String] = [
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        + "POST /b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        + "\r\n"  // stray CRLF after a body, tolerated
        + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: v\r\n\r\n"
        + "GET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz",
]

@Suite struct PipeliningTests {
    @Test func sequenceOfRequests() throws {
        let d = drive(bytes(pipelined[0]))
        #expect(d.error == nil)
        #expect(!d.contractViolation)
        let r = d.received
        try #require(r.count == 4)
        #expect(r.map(\.head.path) == ["/a", "/b", "/c", "/d"])
        #expect(r[1].head.query == "x=1")
        #expect(r[1].body == bytes("hello"))
        #expect(r[2].head.framing == .chunked)
        #expect(r[2].body == bytes("abcde"))
        #expect(r[3].head.version == .http1_0)
        #expect(r[3].head.keepAlive)
        #expect(!d.outcome.midRequest)
    }

    @Test func consumedCountsAddUp() {
        // Manual loop: head consumed + body consumed leaves the next request at offset 0.
        let raw = bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /n HTTP/1.1\r\nHost: h\r\n\r\n")
        var parser = HTTPRequestParser()
        guard case .head(let h1, let c1) = parser.parse(raw) else { Issue.record("no head"); return }
        var body = HTTPBodyDecoder(framing: h1.framing)
        var out: [UInt8] = []
        guard case .done(let c2) = body.decode(raw[c1...], into: &out) else { Issue.record("no body"); return }
        #expect(out == bytes("abc"))
        guard case .head(let h2, let c3) = parser.parse(raw[(c1 + c2)...]) else { Issue.record("no 2nd head"); return }
        #expect(h2.path == "/n")
        #expect(c1 + c2 + c3 == raw.count)
    }

    /// Every two-piece split and byte-by-byte feeding give the unsplit outcome.
    @Test(arguments: pipelined)
    func everySplitPosition(_ text: String) {
        let raw = bytes(text)
        let whole = drive(raw).outcome
        #expect(whole.error == nil)
        #expect(!whole.midRequest)
        #expect(!whole.received.isEmpty)
        for cut in 1..<raw.count {
            let d = drive(raw, splitAt: [cut])
            #expect(!d.contractViolation)
            #expect(d.outcome == whole, "cut at \(cut)")
        }
        let byteByByte = drive(raw, splitAt: Array(1..<raw.count))
        #expect(byteByByte.outcome == whole)
        #expect(!byteByByte.contractViolation)
    }

    @Test func incompleteTailIsReportedAsMidRequest() {
        let d = drive(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab"))
        #expect(d.received.count == 1)
        #expect(d.outcome.midRequest)
        let e = drive(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /partial HT"))
        #expect(e.received.count == 1)
        #expect(e.parser.hasPartialHead)
    }

    @Test func errorAfterGoodRequestStopsTheConnection() {
        let d = drive(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
        #expect(d.received.count == 1)
        #expect(d.error == HTTPError(.contentLengthWithTransferEncoding))
    }
}
