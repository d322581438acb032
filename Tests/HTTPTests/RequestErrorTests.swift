import HTTP
import Testing

/// One malformed head and the rule it must trip.
struct BadHead: Sendable, CustomTestStringConvertible {
    let raw: String
    let kind: HTTPError.Kind
    let status: Int
    init(_ raw: String, _ kind: HTTPError.Kind, _ status: Int = 400) {
        self.raw = raw
        self.kind = kind
        self.status = status
    }
    var testDescription: String { "\(kind): \(raw.debugDescription)" }
}

let h11 = "GET / HTTP/1.1\r\nHost: h\r\n"

let badHeads: [BadHead] = [
    // Request line.
    BadHead("GET /\r\nHost: h\r\n\r\n", .invalidRequestLine),
    BadHead("GET\r\nHost: h\r\n\r\n", .invalidRequestLine),
    BadHead("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidRequestLine),
    BadHead("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
    BadHead("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
    BadHead("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
    BadHead("GET /\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
    BadHead("GET /\u{E9}\r\nHost: h\r\n\r\n", .invalidTarget),
    // A fragment is never sent (RFC 9112 §3.2): `#` is not the same text as `%23`.
    BadHead("GET /admin#/../public HTTP/1.1\r\nHost: h\r\n\r\n", .fragmentInTarget),
    BadHead("GET /a?b#frag HTTP/1.1\r\nHost: h\r\n\r\n", .fragmentInTarget),
    BadHead("GET # HTTP/1.1\r\nHost: h\r\n\r\n", .fragmentInTarget),
    BadHead("GET http://h/x#y HTTP/1.1\r\nHost: h\r\n\r\n", .fragmentInTarget),
    BadHead("GET /#\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", .fragmentInTarget),
    BadHead("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET / http/1.1\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET / HTTP/1\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET / HTTP/11.1\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET / HTTP/1.x\r\nHost: h\r\n\r\n", .invalidVersion),
    BadHead("GET / HTTP/2.0\r\nHost: h\r\n\r\n", .unsupportedVersion, 505),
    BadHead("GET / HTTP/0.9\r\n\r\n", .unsupportedVersion, 505),
    // Line endings and control bytes (bare LF is rejected, never treated as a line end).
    BadHead("GET / HTTP/1.1\nHost: h\n\n", .bareLF),
    BadHead("GET / HTTP/1.1\r\nHost: h\n\r\n", .bareLF),
    BadHead("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .bareLF),
    BadHead("GET / HTTP/1.1\rHost: h\r\n\r\n", .bareCR),
    BadHead(h11 + "X: a\rb\r\n\r\n", .bareCR),
    BadHead("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", .bareCR),
    BadHead(h11 + "X: a\u{0}b\r\n\r\n", .controlCharacter),
    BadHead(h11 + "X: a\u{7F}\r\n\r\n", .controlCharacter),
    BadHead("GET /\u{1}x HTTP/1.1\r\nHost: h\r\n\r\n", .controlCharacter),
    // Field lines.
    BadHead(h11 + "X: a\r\n b\r\n\r\n", .obsFold),
    BadHead(h11 + "X: a\r\n\tb\r\n\r\n", .obsFold),
    BadHead("GET / HTTP/1.1\r\n Host: h\r\n\r\n", .obsFold),
    BadHead(h11 + "X : a\r\n\r\n", .whitespaceBeforeColon),
    BadHead(h11 + "X\t: a\r\n\r\n", .whitespaceBeforeColon),
    BadHead(h11 + ": a\r\n\r\n", .invalidFieldName),
    BadHead(h11 + "X(y): a\r\n\r\n", .invalidFieldName),
    BadHead(h11 + "NoColon\r\n\r\n", .invalidFieldName),
    BadHead(h11 + "X\u{E9}: a\r\n\r\n", .invalidFieldName),
    // Host.
    BadHead("GET / HTTP/1.1\r\n\r\n", .missingHost),
    BadHead(h11 + "HOST: other\r\n\r\n", .duplicateHost),
    // Content-Length.
    BadHead(h11 + "Content-Length: abc\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: -1\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: +1\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 1 2\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 0x10\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length:\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 5,\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 9223372036854775808\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 5, 6\r\n\r\n", .invalidContentLength),
    BadHead(h11 + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength),
    // Transfer-Encoding.
    BadHead(h11 + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthWithTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", .contentLengthWithTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked, gzip\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked, chunked\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked;x=1\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: chunked x\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding:\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: \"chunked\"\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: xchunked\r\n\r\n", .invalidTransferEncoding),
    BadHead("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .invalidTransferEncoding),
    BadHead(h11 + "Transfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding, 501),
    BadHead(h11 + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferCoding, 501),
    // Limits decided from the head.
    BadHead(h11 + "Content-Length: 1048577\r\n\r\n", .bodyTooLarge, 413),
    // Singleton fields (RFC 9110 §5.3), whatever the case of the second name.
    BadHead(h11 + "Content-Type: a/b\r\ncontent-type: c/d\r\n\r\n", .duplicateField("Content-Type")),
    BadHead(h11 + "Content-Type: a/b\r\nContent-Type: a/b\r\n\r\n", .duplicateField("Content-Type")),
    BadHead(h11 + "Authorization: x\r\nAUTHORIZATION: y\r\n\r\n", .duplicateField("Authorization")),
    BadHead(h11 + "Proxy-Authorization: x\r\nProxy-Authorization: y\r\n\r\n", .duplicateField("Proxy-Authorization")),
    BadHead(h11 + "If-Modified-Since: x\r\nIf-Modified-Since: y\r\n\r\n", .duplicateField("If-Modified-Since")),
    BadHead(h11 + "If-Unmodified-Since: x\r\nIf-Unmodified-Since: y\r\n\r\n", .duplicateField("If-Unmodified-Since")),
    BadHead(h11 + "Range: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n", .duplicateField("Range")),
    BadHead(h11 + "If-Range: x\r\nIf-Range: y\r\n\r\n", .duplicateField("If-Range")),
    BadHead(h11 + "Max-Forwards: 1\r\nMax-Forwards: 2\r\n\r\n", .duplicateField("Max-Forwards")),
    BadHead(h11 + "Referer: /a\r\nReferer: /b\r\n\r\n", .duplicateField("Referer")),
    BadHead(h11 + "User-Agent: a\r\nUser-Agent: b\r\n\r\n", .duplicateField("User-Agent")),
    BadHead(h11 + "Date: a\r\nDate: b\r\n\r\n", .duplicateField("Date")),
    BadHead(h11 + "From: a\r\nFrom: b\r\n\r\n", .duplicateField("From")),
    BadHead(h11 + "Content-Range: a\r\nContent-Range: b\r\n\r\n", .duplicateField("Content-Range")),
    BadHead(h11 + "Content-Location: a\r\nContent-Location: b\r\n\r\n", .duplicateField("Content-Location")),
]

@Suite struct RequestErrorTests {
    @Test(arguments: badHeads)
    func rejected(_ bad: BadHead) {
        let e = headError(bad.raw)
        #expect(e?.kind == bad.kind)
        #expect(e?.status == bad.status)
    }

    /// Every bad head fails the same way however it is split (the server sees pieces).
    @Test(arguments: badHeads)
    func rejectedAtEverySplit(_ bad: BadHead) {
        let raw = bytes(bad.raw)
        for cut in 1..<raw.count {
            var p = HTTPRequestParser()
            var result = p.parse(Array(raw[..<cut]))
            if result == .needMore { result = p.parse(Array(raw[cut...])) }
            #expect(result == .error(HTTPError(bad.kind)), "cut at \(cut)")
        }
    }

    /// List fields may repeat; a refusal after the request line carries its method and target for the log.
    @Test func listFieldsRepeatAndRefusalsKnowTheirRequest() {
        var p = HTTPRequestParser()
        guard case .head(let h, _) = p.parse(bytes(h11 + "Accept: a\r\nAccept: b\r\nCookie: a=1\r\nCookie: b=2\r\nX-A: 1\r\nX-A: 2\r\nCache-Control: x\r\nCache-Control: y\r\n\r\n")) else {
            Issue.record("repeated list fields refused")
            return
        }
        #expect(h.headers.values("accept") == ["a", "b"])
        var q = HTTPRequestParser()
        guard case .error(let e) = q.parse(bytes("POST /up?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n")) else {
            Issue.record("not refused")
            return
        }
        #expect(e.method == "POST" && e.target == "/up?x=1")
        #expect(e.message.contains("larger than"))
        #expect(HTTPError(.duplicateField("Content-Type")).message == "Content-Type given more than once (it may appear only once)")
        // Refused while scanning (too large, a control byte in a field): the request line is still named,
        // in one read or split across reads.
        let big = "GET /big?q=1 HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        for cut in [0, 10, 30, 5000] {
            var r = HTTPRequestParser()
            var result = cut == 0 ? r.parse(bytes(big)) : r.parse(bytes(String(big.prefix(cut))))
            if result == .needMore { result = r.parse(bytes(String(big.dropFirst(cut)))) }
            guard case .error(let e) = result else { Issue.record("not refused at cut \(cut)"); continue }
            #expect(e.kind == .headTooLarge && e.method == "GET" && e.target == "/big?q=1", "cut \(cut): \(e)")
        }
        var c = HTTPRequestParser()
        guard case .error(let ctl) = c.parse(bytes("PUT /x HTTP/1.1\r\nHost: h\r\nX: a\u{1}b\r\n\r\n")) else { Issue.record("not refused"); return }
        #expect(ctl.kind == .controlCharacter && ctl.method == "PUT" && ctl.target == "/x")
        var l = HTTPRequestParser()
        guard case .error(let line) = l.parse(bytes("GET /\u{1}")) else { Issue.record("not refused"); return }
        #expect(line.method == nil, "no whole request line, no method")
    }

    /// Every refusal made once the method and target are delimited names them: the target form, the version
    /// (400 and 505), a byte the target may not hold (escaped: no control byte or invalid UTF-8 in a log line).
    @Test func refusalsAfterTheRequestLineIsDelimitedNameIt() {
        let cases: [(raw: [UInt8], kind: HTTPError.Kind, method: String, target: String)] = [
            (bytes("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), .invalidTargetForm, "GET", "*"),
            (bytes("CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n"), .invalidTargetForm, "CONNECT", "/x"),
            (bytes("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), .unsupportedVersion, "GET", "/"),
            (bytes("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), .invalidVersion, "GET", "/"),
            (bytes("GET /a HTTP/1\r\nHost: h\r\n\r\n"), .invalidVersion, "GET", "/a"),
            (bytes("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"), .fragmentInTarget, "GET", "/a#b"),
            (bytes("GET /") + [0xE9] + bytes(" HTTP/1.1\r\nHost: h\r\n\r\n"), .invalidTarget, "GET", "/\\xE9"),
            (bytes("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), .invalidTarget, "GET", "/a\\x09b"),
            (bytes("GET /\u{E9}x HTTP/2.0\r\nHost: h\r\n\r\n"), .invalidTarget, "GET", "/\\xC3\\xA9x"),
            // Refused while the head was scanned: the request line is named the same way.
            (bytes("GET /") + [0xFF] + bytes(" HTTP/1.1\r\nHost: h\r\nX: a\u{1}\r\n\r\n"), .controlCharacter, "GET", "/\\xFF"),
            // A request line ended by a bare LF or CR is still a request line for the log (it was `- -`).
            (bytes("GET /lf?x=1 HTTP/1.1\nHost: h\n\n"), .bareLF, "GET", "/lf?x=1"),
            (bytes("POST /cr HTTP/1.1\rHost: h\r\r"), .bareCR, "POST", "/cr"),
            (bytes("GET /hdr HTTP/1.1\r\nHost: h\nX: 1\n\n"), .bareLF, "GET", "/hdr"),
        ]
        for c in cases {
            for cut in [0, 3, 6, c.raw.count - 2] {
                var p = HTTPRequestParser()
                var result = p.parse(Array(c.raw[..<(cut == 0 ? c.raw.count : cut)]))
                if cut > 0, result == .needMore { result = p.parse(Array(c.raw[cut...])) }
                guard case .error(let e) = result else { Issue.record("not refused: \(c.raw) cut \(cut)"); continue }
                #expect(e.kind == c.kind && e.method == c.method && e.target == c.target, "cut \(cut): \(e) \(e.method ?? "-") \(e.target ?? "-")")
            }
        }
    }

    @Test func errorStatusMapping() {
        #expect(HTTPError(.headTooLarge).status == 431)
        #expect(HTTPError(.bodyTooLarge).status == 413)
        #expect(HTTPError(.unsupportedVersion).status == 505)
        #expect(HTTPError(.unsupportedTransferCoding).status == 501)
        #expect(HTTPError(.obsFold).status == 400)
        #expect(HTTPError(.invalidChunk).status == 400)
    }

    @Test func controlBytesFailEarlyWithoutCompleteHead() {
        // e.g. a TLS ClientHello sent to the plain socket: no need to wait for 8 KiB.
        var p = HTTPRequestParser()
        #expect(p.parse([0x16, 0x03, 0x01, 0x02, 0x00]) == .error(HTTPError(.controlCharacter)))
        var q = HTTPRequestParser()
        #expect(q.parse(bytes("GET / HTTP/1.1\n")) == .error(HTTPError(.bareLF)))
    }
}

/// The head scan steps over eight bytes at a time while none is a control byte or DEL: every byte value at
/// every offset of a long field value (so at every place in a word, and in the byte steps between words)
/// gets the same answer as one byte at a time would give, fed whole and in two pieces.
@Suite struct WordScanTests {
    @Test func everyByteAtEveryOffsetOfAFieldValue() {
        for offset in 0..<24 {
            for value in 0...255 {
                let b = UInt8(value)
                let head = Array("GET / HTTP/1.1\r\nHost: h\r\nX-A: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: offset) + [b]
                    + Array(repeating: UInt8(ascii: "z"), count: 17) + Array("\r\n\r\n".utf8)
                let expected: HTTPError.Kind?
                switch b {
                case 0x0D: expected = .bareCR
                case 0x0A: expected = .bareLF
                case 0x09: expected = nil
                case 0..<0x20, 0x7F: expected = .controlCharacter
                default: expected = nil
                }
                for cut in [head.count, 30 + offset, 31 + offset] {
                    var p = HTTPRequestParser()
                    var result = p.parse(Array(head[..<cut]))
                    var fed = head.count
                    if result == .needMore && cut < head.count {
                        result = p.parse(Array(head[cut...]))
                        fed = head.count - cut
                    }
                    switch result {
                    case .error(let e):
                        #expect(e.kind == expected, "byte \(value) at \(offset), cut \(cut): \(e.kind)")
                    case .head(let h, let consumed):
                        #expect(expected == nil && consumed == fed && h.headers.fields.count == 2,
                                "byte \(value) at \(offset), cut \(cut): accepted")
                    case .needMore:
                        Issue.record("byte \(value) at \(offset), cut \(cut): needs more")
                    }
                }
            }
        }
    }

    /// A request line of printable bytes is refused once it runs past the line limit, wherever the limit falls
    /// inside a word.
    @Test func requestLineLimitInsideAWord() {
        for limit in 20..<36 {
            var limits = HTTPLimits()
            limits.maxRequestLineBytes = limit
            for length in (limit - 3)...(limit + 3) {
                let line = "GET /" + String(repeating: "a", count: length - 14) + " HTTP/1.1"
                #expect(line.utf8.count == length)
                var p = HTTPRequestParser(limits: limits)
                let result = p.parse(Array((line + "\r\nHost: h\r\n\r\n").utf8))
                if length > limit {
                    guard case .error(let e) = result else { Issue.record("line \(length) over limit \(limit) accepted"); continue }
                    #expect(e.kind == .requestLineTooLong, "line \(length), limit \(limit): \(e.kind)")
                } else {
                    guard case .head = result else { Issue.record("line \(length) within limit \(limit) refused: \(result)"); continue }
                }
            }
        }
    }
}
