import Testing
import HTTP

/// Issue 10: the remaining places where RFC 9110/9112 require a server to refuse, each with its status.
@Suite struct Strictness {
    // RFC 9112 §3.2: the four request-target forms, each only where it belongs.
    @Test(arguments: [
        "GET / HTTP/1.1", "GET ///a HTTP/1.1", "M-SEARCH /x HTTP/1.1", "-X /y HTTP/1.1",
        "OPTIONS * HTTP/1.1", "CONNECT example.com:443 HTTP/1.1", "GET http://example.com/p?q HTTP/1.1",
        "GET https://h:8080 HTTP/1.1",
    ])
    func validTargetFormsAreAccepted(_ line: String) {
        #expect(head(line + "\r\nHost: example.com\r\n\r\n") != nil, "\(line)")
    }

    @Test(arguments: [
        "GET a/b HTTP/1.1", "GET * HTTP/1.1", "CONNECT / HTTP/1.1", "CONNECT example.com HTTP/1.1",
        "GET example.com:443 HTTP/1.1", "GET :/x HTTP/1.1", "CONNECT http://h/ HTTP/1.1", "OPTIONS ** HTTP/1.1",
    ])
    func targetInTheWrongFormIs400(_ line: String) {
        #expect(headError(line + "\r\nHost: example.com\r\n\r\n")?.status == 400, "\(line)")
    }

    // RFC 9110 §7.2 and RFC 3986 §3.2.2: Host is uri-host [ ":" port ].
    @Test(arguments: ["example.com", "example.com:8080", "127.0.0.1", "[::1]:443", "a-b.c_d~e", "", "xn--bcher-kva.example"])
    func validHostIsAccepted(_ host: String) {
        #expect(head("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n") != nil, "Host: \(host)")
    }

    @Test(arguments: ["exa mple.com", "a/b", "user@host", "h:port", "[::1", "h:80:90", "h?x", "h#f", "[zz]"])
    func invalidHostIs400(_ host: String) {
        #expect(headError("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")?.status == 400, "Host: \(host)")
    }

    // RFC 9110 §5.1: field names are tokens; `_` makes CGI/WSGI's HTTP_* names ambiguous.
    @Test func underscoreFieldNamesAreDroppedByDefault() {
        let h = head("GET / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nX-Ok: 1\r\n\r\n")
        #expect(h?.headers.map(\.name) == ["Host", "X-Ok"])
        #expect(h?.framing == HTTPBodyFraming.none)
    }

    @Test func underscoreFieldNamesCanBeRefusedOrKept() {
        var refuse = HTTPLimits()
        refuse.underscoreFields = .refuse
        #expect(headError("GET / HTTP/1.1\r\nHost: h\r\nX_A: 1\r\n\r\n", limits: refuse)?.status == 400)
        var keep = HTTPLimits()
        keep.underscoreFields = .keep
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nX_A: 1\r\n\r\n", limits: keep)?.headers.first("X_A") == "1")
    }

    // RFC 9110 §8.6 lets a recipient refuse a list; a smuggling-safe server does.
    @Test(arguments: ["5, 5", "5,5", "5 ,5", ",5", "5,"])
    func contentLengthListIs400(_ value: String) {
        #expect(headError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\n")?.status == 400, "\(value)")
    }

    // RFC 9112 §7.1.1: BWS is only allowed before a chunk extension's ";".
    @Test func whitespaceAfterChunkSizeWithoutExtensionIs400() {
        #expect(decodeBody(.chunked, bytes("5 \r\nhello\r\n0\r\n\r\n")).0 == .error(HTTPError(.invalidChunk)))
        #expect(decodeBody(.chunked, bytes("5\t\r\nhello\r\n0\r\n\r\n")).0 == .error(HTTPError(.invalidChunk)))
        let ok = bytes("5 ;a=b\r\nhello\r\n0\r\n\r\n")
        #expect(decodeBody(.chunked, ok).0 == .done(consumed: ok.count))
    }

    @Test func chunkExtensionsAreBoundedPerBody() {
        // Many small chunks, each with an extension: the total is bounded, not only each line.
        var raw = ""
        for _ in 0..<200 { raw += "1;" + String(repeating: "e", count: 100) + "\r\nx\r\n" }
        #expect(decodeBody(.chunked, bytes(raw + "0\r\n\r\n")).0 == .error(HTTPError(.chunkExtensionsTooLarge)))
    }

    // RFC 9110 §6.5.1: framing, routing and content-processing fields never come in trailers.
    @Test(arguments: ["Content-Length", "transfer-encoding", "Host", "Connection", "TE", "Trailer", "Content-Type", "Expect"])
    func framingFieldsInTrailersAre400(_ name: String) {
        #expect(decodeBody(.chunked, bytes("1\r\nx\r\n0\r\n\(name): 1\r\n\r\n")).0 == .error(HTTPError(.forbiddenTrailerField)), "\(name)")
    }

    @Test func ordinaryTrailersAreFine() {
        let raw = bytes("1\r\nx\r\n0\r\nX-Checksum: 1\r\nServer-Timing: a\r\n\r\n")
        #expect(decodeBody(.chunked, raw).0 == .done(consumed: raw.count))
    }

    // gunicorn's limit_request_line / limit_request_field_size / limit_request_fields.
    @Test func requestLineLimitIs414() {
        let long = "GET /" + String(repeating: "a", count: 5000) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(headError(long, limits: HTTPLimits(maxHeadBytes: 16384))?.status == 414)
        // Still 414 when the line alone overflows the head buffer before its CRLF.
        #expect(headError("GET /" + String(repeating: "a", count: 20000), limits: HTTPLimits(maxHeadBytes: 8192))?.status == 414)
        #expect(head("GET /" + String(repeating: "a", count: 4000) + " HTTP/1.1\r\nHost: h\r\n\r\n") != nil)
    }

    @Test func fieldSizeAndCountLimitsAre431() {
        let big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "b", count: 9000) + "\r\n\r\n"
        #expect(headError(big, limits: HTTPLimits(maxHeadBytes: 65536))?.status == 431)
        let many = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(headError(many, limits: HTTPLimits(maxHeadBytes: 65536))?.status == 431)
        let hundred = "GET / HTTP/1.1\r\n" + (0..<99).map { "X-\($0): v\r\n" }.joined() + "Host: h\r\n\r\n"
        #expect(head(hundred, limits: HTTPLimits(maxHeadBytes: 65536)) != nil, "100 fields are fine")
    }
}
