import HTTP
import Testing

/// A chunked body and what it decodes to.
struct ChunkedCase: Sendable, CustomTestStringConvertible {
    let raw: String
    let decoded: String
    var testDescription: String { raw.debugDescription }
}

let validChunked: [ChunkedCase] = [
    ChunkedCase(raw: "0\r\n\r\n", decoded: ""),
    ChunkedCase(raw: "5\r\nhello\r\n0\r\n\r\n", decoded: "hello"),
    ChunkedCase(raw: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", decoded: "hello world"),
    ChunkedCase(raw: "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", decoded: "0123456789abcdefghij"),
    ChunkedCase(raw: "005\r\nhello\r\n000\r\n\r\n", decoded: "hello"),
    ChunkedCase(raw: "5;name=value\r\nhello\r\n0;last\r\n\r\n", decoded: "hello"),
    ChunkedCase(raw: "5 ; a=\"b c\"\r\nhello\r\n0\r\n\r\n", decoded: "hello"),
    ChunkedCase(raw: "3\r\n\r\n\r\r\n0\r\n\r\n", decoded: "\r\n\r"),  // data is opaque
    ChunkedCase(raw: "2\r\nok\r\n0\r\nX-Trailer: v\r\nChecksum:abc\t\r\n\r\n", decoded: "ok"),
]

struct BadChunked: Sendable, CustomTestStringConvertible {
    let raw: String
    let kind: HTTPError.Kind
    var testDescription: String { raw.debugDescription }
}

let invalidChunked: [BadChunked] = [
    BadChunked(raw: "\r\n", kind: .invalidChunk),  // missing size digits
    BadChunked(raw: ";ext\r\n", kind: .invalidChunk),
    BadChunked(raw: "g\r\n", kind: .invalidChunk),
    BadChunked(raw: "-1\r\n", kind: .invalidChunk),
    BadChunked(raw: "0x5\r\n", kind: .invalidChunk),
    BadChunked(raw: "5\nhello\r\n", kind: .invalidChunk),  // bare LF after size
    BadChunked(raw: "5\rhello\r\n", kind: .invalidChunk),
    BadChunked(raw: "5\r\nhelloX\r\n", kind: .invalidChunk),  // data longer than size
    BadChunked(raw: "5\r\nhello\n0\r\n\r\n", kind: .invalidChunk),
    BadChunked(raw: "5\r\nhello\rX", kind: .invalidChunk),
    BadChunked(raw: "5;a\u{0}b\r\n", kind: .invalidChunk),
    BadChunked(raw: "5;a\nb\r\n", kind: .invalidChunk),
    BadChunked(raw: "8000000000000000\r\n", kind: .invalidChunk),  // > Int.max
    BadChunked(raw: "fffffffffffffffffff\r\n", kind: .invalidChunk),
    BadChunked(raw: "0\r\n\n", kind: .invalidFieldName),
    BadChunked(raw: "0\r\n\rX", kind: .bareCR),
    BadChunked(raw: "0\r\n X: y\r\n\r\n", kind: .obsFold),
    BadChunked(raw: "0\r\nX : y\r\n\r\n", kind: .whitespaceBeforeColon),
    BadChunked(raw: "0\r\n: y\r\n\r\n", kind: .invalidFieldName),
    BadChunked(raw: "0\r\nX\r\n\r\n", kind: .invalidFieldName),
    BadChunked(raw: "0\r\nX: a\nb\r\n\r\n", kind: .bareLF),
    BadChunked(raw: "0\r\nX: a\u{1}\r\n\r\n", kind: .invalidFieldValue),
    BadChunked(raw: "0\r\nX: a\rb\r\n\r\n", kind: .bareCR),
]

@Suite struct BodyDecoderTests {
    @Test func noBodyIsDoneImmediately() {
        let (r, out) = decodeBody(.none, bytes("GET / HTTP/1.1\r\n"))
        #expect(r == .done(consumed: 0))
        #expect(out.isEmpty)
        #expect(decodeBody(.contentLength(0), []).0 == .done(consumed: 0))
        #expect(HTTPBodyDecoder(framing: .none).isDone)
    }

    @Test func contentLengthCountsBytes() {
        let (r, out) = decodeBody(.contentLength(5), bytes("hello, and the next request"))
        #expect(r == .done(consumed: 5))
        #expect(out == bytes("hello"))
        var d = HTTPBodyDecoder(framing: .contentLength(5))
        var body: [UInt8] = []
        #expect(d.decode(bytes("he"), into: &body) == .needMore)
        #expect(d.bodyBytes == 2)
        #expect(!d.isDone)
        #expect(d.decode(bytes(""), into: &body) == .needMore)
        #expect(d.decode(bytes("lloXY"), into: &body) == .done(consumed: 3))
        #expect(d.isDone)
        #expect(body == bytes("hello"))
        #expect(d.decode(bytes("more"), into: &body) == .done(consumed: 0))  // stays done
    }

    @Test func contentLengthEverySplit() {
        let input = bytes("0123456789NEXT")
        for cut in 0...input.count {
            var d = HTTPBodyDecoder(framing: .contentLength(10))
            var out: [UInt8] = []
            var r = d.decode(Array(input[..<cut]), into: &out)
            var total = cut
            if r == .needMore {
                r = d.decode(Array(input[cut...]), into: &out)
                guard case .done(let c) = r else { Issue.record("cut \(cut): \(r)"); continue }
                total = cut + c
            } else if case .done(let c) = r {
                total = c
            }
            #expect(total == 10)
            #expect(out == bytes("0123456789"))
        }
    }

    @Test func negativeContentLengthFramingIsRejected() {
        #expect(decodeBody(.contentLength(-1), []).0 == .error(HTTPError(.invalidContentLength)))
    }

    @Test(arguments: validChunked)
    func chunkedDecodes(_ c: ChunkedCase) {
        let raw = bytes(c.raw)
        let (r, out) = decodeBody(.chunked, raw + bytes("NEXT"))
        #expect(r == .done(consumed: raw.count))
        #expect(out == bytes(c.decoded))
    }

    /// Splitting at every position (two pieces) and feeding byte by byte give the same result.
    @Test(arguments: validChunked)
    func chunkedEverySplit(_ c: ChunkedCase) {
        let raw = bytes(c.raw) + bytes("NEXT")
        let bodyLength = raw.count - 4
        for cut in 0...raw.count {
            var d = HTTPBodyDecoder(framing: .chunked)
            var out: [UInt8] = []
            var consumed = 0
            switch d.decode(Array(raw[..<cut]), into: &out) {
            case .needMore:
                guard case .done(let k) = d.decode(Array(raw[cut...]), into: &out) else {
                    Issue.record("cut \(cut)"); continue
                }
                consumed = cut + k
            case .done(let k):
                consumed = k
            case .error(let e):
                Issue.record("cut \(cut): \(e)")
            }
            #expect(consumed == bodyLength, "cut \(cut)")
            #expect(out == bytes(c.decoded), "cut \(cut)")
        }
        var d = HTTPBodyDecoder(framing: .chunked)
        var out: [UInt8] = []
        var consumed = 0
        for (i, b) in raw.enumerated() {
            let r = d.decode([b], into: &out)
            if r == .done(consumed: 1) { consumed = i + 1; break }
            #expect(r == .needMore)
        }
        #expect(consumed == bodyLength)
        #expect(out == bytes(c.decoded))
    }

    @Test(arguments: invalidChunked)
    func chunkedRejects(_ c: BadChunked) {
        let raw = bytes(c.raw)
        let (r, _) = decodeBody(.chunked, raw)
        #expect(r == .error(HTTPError(c.kind)))
        // Byte by byte reaches the same verdict.
        var d = HTTPBodyDecoder(framing: .chunked)
        var out: [UInt8] = []
        var last = HTTPBodyResult.needMore
        for b in raw where last == .needMore { last = d.decode([b], into: &out) }
        #expect(last == .error(HTTPError(c.kind)))
        if case .error(let e) = last { #expect(e.status == (c.kind == .headTooLarge ? 431 : 400)) }
    }

    @Test func largestChunkSizeWithinIntIsAcceptedSyntactically() {
        var d = HTTPBodyDecoder(framing: .chunked, limits: HTTPLimits(maxBodyBytes: nil))
        var out: [UInt8] = []
        #expect(d.decode(bytes("7fffffffffffffff\r\nab"), into: &out) == .needMore)
        #expect(out == bytes("ab"))
    }

    @Test func chunkExtensionLineIsBounded() {
        let limits = HTTPLimits(maxHeadBytes: 64)
        let long = bytes("1;" + String(repeating: "x", count: 100) + "\r\n")
        #expect(decodeBody(.chunked, long, limits: limits).0 == .error(HTTPError(.invalidChunk)))
    }

    @Test func rawBufferEntryPoint() {
        var d = HTTPBodyDecoder(framing: .chunked)
        var out: [UInt8] = []
        let raw = bytes("3\r\nabc\r\n0\r\n\r\n")
        let r = raw.withUnsafeBytes { d.decode($0, into: &out) }
        #expect(r == .done(consumed: raw.count))
        #expect(out == bytes("abc"))
    }
}
