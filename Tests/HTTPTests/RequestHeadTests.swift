import HTTP
import Testing

@Suite struct RequestHeadTests {
    @Test func simpleGet() throws {
        let raw = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
        guard case .head(let h, let consumed) = parseHead(raw) else { Issue.record("no head"); return }
        #expect(consumed == raw.utf8.count)
        #expect(h.method == "GET")
        #expect(h.path == "/index.html")
        #expect(h.query == nil)
        #expect(h.target == "/index.html")
        #expect(h.version == .http1_1)
        #expect(h.headers.count == 2)
        #expect(h.headers[0] == HTTPField(name: "Host", value: "example.com"))
        #expect(h.keepAlive)
        #expect(!h.expectContinue)
        #expect(h.framing == .none)
    }

    @Test func targetSplitAtFirstQuestionMark() throws {
        let h = try #require(head("GET /a/b%20c?x=1&y=?z HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(h.path == "/a/b%20c")  // not percent-decoded
        #expect(h.query == "x=1&y=?z")
        #expect(h.target == "/a/b%20c?x=1&y=?z")
        let empty = try #require(head("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(empty.path == "/p")
        #expect(empty.query == "")
        #expect(empty.target == "/p?")
    }

    @Test func otherTargetForms() throws {
        #expect(head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "*")
        // RFC 9112 §3.2.2: absolute-form becomes origin-form with Host = the target's authority.
        let absolute = head("GET http://evil:81/x?q HTTP/1.1\r\nHost: good\r\nX: 1\r\n\r\n")
        #expect(absolute?.path == "/x" && absolute?.query == "q")
        #expect(absolute?.headers.fields.filter { $0.name.lowercased() == "host" }.map(\.value) == ["evil:81"])
        #expect(head("GET http://h HTTP/1.0\r\n\r\n")?.headers.fields.map(\.value) == ["h"])
        #expect(head("GET http://h HTTP/1.0\r\n\r\n")?.path == "/")
        #expect(head("OPTIONS http://h:8001 HTTP/1.1\r\nHost: h:8001\r\n\r\n")?.path == "*")
        #expect(headError("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
        #expect(headError("GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
        #expect(head("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")?.path == "h:443")
    }

    @Test func methodIsAnyToken() throws {
        #expect(head("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n")?.method == "M-SEARCH")
        // RFC 9112 §3.2.4: the asterisk-form is for OPTIONS only (SSDP's `M-SEARCH *` is not HTTP).
        #expect(headError("M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n")?.kind == .invalidTargetForm)
        #expect(head("get / HTTP/1.1\r\nHost: h\r\n\r\n")?.method == "get")  // case kept
    }

    @Test func headerLookupIsCaseInsensitiveAndOrdered() throws {
        let h = try #require(head(
            "GET / HTTP/1.1\r\nhOsT: h\r\nX-A: 1\r\nx-a: 2\r\nX-B:3\r\nX-A:   4  \t\r\n\r\n"))
        #expect(h.headers.first("host") == "h")
        #expect(h.headers.first("X-A") == "1")
        #expect(h.headers.values("x-A") == ["1", "2", "4"])  // OWS trimmed
        #expect(h.headers.first("x-b") == "3")
        #expect(h.headers.first("missing") == nil)
        #expect(h.headers.contains("X-B"))
        #expect(h.headers.map(\.name) == ["hOsT", "X-A", "x-a", "X-B", "X-A"])
    }

    @Test func valuesMayBeEmptyOrContainTabsAndObsText() throws {
        let h = try #require(head("GET / HTTP/1.1\r\nHost: h\r\nE:\r\nF: \t \r\nT: a\tb\r\nU: caf\u{E9}\r\n\r\n"))
        #expect(h.headers.first("E") == "")
        #expect(h.headers.first("F") == "")
        #expect(h.headers.first("T") == "a\tb")
        #expect(h.headers.first("U") == "caf\u{E9}")
        var raw = bytes("GET / HTTP/1.1\r\nHost: h\r\nL: \r\n\r\n")
        raw.insert(0xE9, at: 28)  // Latin-1 obs-text, not UTF-8: allowed, decoded lossily
        var p = HTTPRequestParser()
        guard case .head(let l, _) = p.parse(raw) else { Issue.record("no head"); return }
        #expect(l.headers.first("L") == "\u{FFFD}")
    }

    @Test func http10() throws {
        let h = try #require(head("GET / HTTP/1.0\r\n\r\n"))  // Host not required on 1.0
        #expect(h.version == .http1_0)
        #expect(!h.keepAlive)
        #expect(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")?.keepAlive == false)
        #expect(head("GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
    }

    @Test func http11KeepAlive() throws {
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")?.keepAlive == false)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n")?.keepAlive == false)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nconnection: close\r\n\r\n")?.keepAlive == false)
    }

    @Test func higherMinorVersionTreatedAs11() throws {
        let h = try #require(head("GET / HTTP/1.7\r\nHost: h\r\n\r\n"))
        #expect(h.version == HTTPVersion(major: 1, minor: 7))
        #expect(h.keepAlive)
        #expect(headError("GET / HTTP/1.7\r\n\r\n")?.kind == .missingHost)
    }

    @Test func expectContinue() throws {
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")?.expectContinue == true)
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n")?.expectContinue == false)
        #expect(head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")?.expectContinue == false)
    }

    @Test func framing() throws {
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n")?.framing == .contentLength(42))
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")?.framing == .contentLength(0))
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n")?.framing == .chunked)
        #expect(head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked,\r\n\r\n")?.framing == .chunked)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.framing == HTTPBodyFraming.none)
    }

    /// RFC 9110 §8.6: repeated fields are the list `5, 5`, which is refused: so are they.
    @Test func repeatedContentLengthIsRefusedLikeAList() throws {
        #expect(headError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")?.status == 400)
        #expect(headError("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 005\r\nContent-Length: 5\r\n\r\n")?.status == 400)
        #expect(headError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n")?.status == 400)
    }

    @Test func leadingEmptyLinesAreSkipped() throws {
        let raw = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        guard case .head(let h, let consumed) = parseHead(raw) else { Issue.record("no head"); return }
        #expect(h.path == "/")
        #expect(consumed == raw.utf8.count)
        let limits = HTTPLimits(maxLeadingEmptyLines: 2)
        #expect(head("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", limits: limits) != nil)
        #expect(headError("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", limits: limits)?.kind == .tooManyEmptyLines)
    }

    @Test func leadingEmptyLineSplitBetweenCRAndLF() throws {
        var p = HTTPRequestParser()
        #expect(p.parse(bytes("\r\n\r")) == .needMore)
        #expect(p.hasPartialHead)
        let rest = bytes("\nGET / HTTP/1.1\r\nHost: h\r\n\r\nXY")
        guard case .head(let h, let consumed) = p.parse(rest) else { Issue.record("no head"); return }
        #expect(h.path == "/")
        #expect(consumed == rest.count - 2)
        #expect(!p.hasPartialHead)
    }

    @Test func consumedStopsAtEndOfHead() throws {
        let headText = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"
        guard case .head(_, let consumed) = parseHead(headText + "bodyGET / HTTP/1.1\r\n") else {
            Issue.record("no head"); return
        }
        #expect(consumed == headText.utf8.count)
    }

    @Test func rawBufferPointerEntryPoint() throws {
        var p = HTTPRequestParser()
        let raw = bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let r = raw.withUnsafeBytes { p.parse($0) }
        guard case .head(let h, let c) = r else { Issue.record("no head"); return }
        #expect(h.method == "GET")
        #expect(c == raw.count)
    }

    @Test func parserIsReusableAfterHeadAndStickyAfterError() throws {
        var p = HTTPRequestParser()
        for _ in 0..<3 {
            guard case .head = p.parse(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) else { Issue.record("no head"); return }
        }
        #expect(p.parse(bytes("BAD\r\n\r\n")) == .error(HTTPError(.invalidRequestLine)))
        #expect(p.parse(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) == .error(HTTPError(.invalidRequestLine)))
        p.reset()
        guard case .head = p.parse(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) else { Issue.record("no head after reset"); return }
    }

    @Test func headersCollectionHelpers() {
        var h: HTTPHeaders = ["A": "1", "a": "2"]
        h.append("B", "3")
        #expect(h.values("A") == ["1", "2"])
        #expect(h.count == 3)
        #expect(HTTPRequestHead(method: "GET", path: "/x", query: "y").target == "/x?y")
    }
}

/// One parser, head after head (a keep-alive connection): a line the same as the previous head's in its place keeps
/// its strings, and whatever changes, each head's fields are exactly its own (values, order, count), also while an
/// earlier head is still held (copy on write) and after a refused one.
@Suite struct RepeatedHeadsTests {
    func fields(_ h: HTTPRequestHead) -> [String] { h.headers.fields.map { "\($0.name): \($0.value)" + ($0.rawValue.map { " raw\($0.count)" } ?? "") } }

    @Test func eachHeadHasExactlyItsOwnFields() throws {
        var parser = HTTPRequestParser()
        let heads: [[String]] = [
            ["Host: a", "User-Agent: client/1.0 (a long enough value to live on the heap)", "Accept: */*"],
            ["Host: a", "User-Agent: client/1.0 (a long enough value to live on the heap)", "Accept: */*"],
            ["Host: a", "User-Agent: client/2.0 (a long enough value to live on the heap)", "Accept: */*", "Cookie: x=1"],
            ["Host: b"],
            ["Host: b", "X-Caf: caf\u{e9}", "Accept: */*"],
            ["Host: b", "X-Caf: cafe", "Accept: */*"],
            ["Host: b", "x_dropped: 1", "Accept: */*"],
            ["Host: b", "Accept: text/html", "Accept: */*"],
        ]
        var held: [HTTPRequestHead] = []
        for (i, lines) in heads.enumerated() {
            let raw = "GET /\(i) HTTP/1.1\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n"
            guard case .head(let h, _) = parser.parse(Array(raw.utf8)) else { Issue.record("head \(i) not parsed"); return }
            let want = lines.filter { !$0.hasPrefix("x_") }.map { $0.contains("\u{e9}") ? $0 + " raw5" : $0 }
            #expect(fields(h) == want, "head \(i)")
            held.append(h)
            if i == 3 {
                // A refused head between two good ones.
                guard case .error = parser.parse(Array("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".utf8)) else {
                    Issue.record("duplicate Host not refused"); return
                }
                parser.reset()
            }
        }
        // Heads held meanwhile kept their own fields.
        for (i, h) in held.enumerated() {
            #expect(fields(h) == heads[i].filter { !$0.hasPrefix("x_") }.map { $0.contains("\u{e9}") ? $0 + " raw5" : $0 }, "held head \(i)")
        }
    }

    /// A Host line the same as the previous head's skips its check (it passed then); any other is checked: on one
    /// parser, each invalid Host after a valid one, and after one in another place, is still refused.
    @Test func aHostNotTheSameAsTheKeptOneIsStillChecked() {
        var parser = HTTPRequestParser()
        for bad in ["exa mple.com", "a/b", "user@host", "h:port", "[::1", "h:80:90", "127.0.0.1:8o80"] {
            for good in ["GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "GET / HTTP/1.1\r\nX: 1\r\nHost: 127.0.0.1:8080\r\n\r\n"] {
                parser.reset()
                guard case .head = parser.parse(Array(good.utf8)), case .head = parser.parse(Array(good.utf8)) else {
                    Issue.record("a valid head refused"); return
                }
                guard case .error(let e) = parser.parse(Array("GET / HTTP/1.1\r\nHost: \(bad)\r\n\r\n".utf8)) else {
                    Issue.record("Host: \(bad) accepted after a valid Host"); continue
                }
                #expect(e.status == 400, "Host: \(bad)")
            }
        }
    }
}
