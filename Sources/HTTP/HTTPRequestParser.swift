import Glibc

/// Result of feeding bytes to `HTTPRequestParser`.
public enum HTTPParseResult: Sendable, Hashable {
    /// The head is incomplete. All given bytes were taken (copied internally);
    /// feed only new bytes next time.
    case needMore
    /// A complete head. `consumed` bytes of the input given to *this* call belong to
    /// the head (and any skipped empty lines); the rest is body and/or the next request.
    case head(HTTPRequestHead, consumed: Int)
    /// The request is invalid: answer `status` (e.g. `HTTPResponseWriter.errorResponse`)
    /// and close. The parser stays failed until `reset()`.
    case error(HTTPError)
}

/// Incremental, non-blocking parser for request heads (request line + header fields).
///
/// Feed bytes as they arrive. When a whole head is in one read (the common case) it is
/// parsed straight from the caller's bytes; only a partial head is copied, and at most
/// `maxHeadBytes + 1` bytes are ever kept, so memory per connection is bounded.
///
/// Strictness (deliberate, since nginx in front normalises well-behaved clients and
/// anything odd is more likely an attack than a client to be accommodated):
/// - Lines must end in CRLF; bare LF and bare CR are rejected with 400.
/// - Up to `maxLeadingEmptyLines` CRLFs before the request line are skipped.
/// - Exactly one SP between request-line parts; target must be visible ASCII without `#`.
/// - `HTTP/1.x` with x > 1 is accepted and treated like 1.1 (RFC 9110 §6.2); other
///   majors get 505.
/// - Transfer-Encoding: final coding must be `chunked` (else 400, per RFC 9112 §6.3);
///   other codings before it get 501; any Transfer-Encoding on HTTP/1.0 gets 400.
/// - Expect values other than 100-continue are ignored (no 417).
/// The 408 header timeout is the caller's job; see `hasPartialHead`.
///
/// A worker's read loop, per connection (one parser per connection, reused across requests):
/// ```
/// switch parser.parse(newBytes) {
/// case .needMore: break                                  // wait for more bytes
/// case .head(let head, let consumed):                    // bytes after `consumed` start the body
///     if head.expectContinue { send(HTTPResponseWriter.continueResponse) }
///     var body = HTTPBodyDecoder(framing: head.framing, limits: limits)
///     body.decode(newBytes[consumed...], into: &bodyBytes) // .done(consumed:) -> next request
/// case .error(let e): send(HTTPResponseWriter.errorResponse(for: e)); close()
/// }
/// ```
public struct HTTPRequestParser: Sendable {
    /// Limits checked while parsing.
    public var limits: HTTPLimits

    /// Bytes of an incomplete head, starting at its request line (or a lone CR of a
    /// leading empty line).
    private var buffer: [UInt8] = []
    /// How far `buffer` has been scanned for the end of the head, so a head that
    /// arrives in many small pieces is scanned once, not quadratically.
    private var scanned = 0
    /// Empty lines skipped before the current request line.
    private var emptyLines = 0
    private var failure: HTTPError?
    /// The last head's fields, kept for the next head: once the request that had them is over nothing else
    /// holds them, and the next head's fields go in the same storage (no allocation and free per request).
    private var fieldStorage: [HTTPField] = []

    /// A parser for one connection.
    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Whether bytes of an incomplete head are buffered. Use it to choose between the
    /// idle keep-alive timeout (false: close silently) and the header timeout (true: 408).
    public var hasPartialHead: Bool { !buffer.isEmpty }

    /// Forgets buffered bytes and any failure, ready for a fresh connection.
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        scanned = 0
        emptyLines = 0
        failure = nil
    }

    /// Feeds bytes that follow those fed before (after subtracting `consumed`).
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> HTTPParseResult {
        parseBytes(bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Feeds bytes that follow those fed before.
    public mutating func parse(_ bytes: [UInt8]) -> HTTPParseResult {
        bytes.withUnsafeBufferPointer { parseBytes($0) }
    }

    /// Feeds bytes that follow those fed before.
    public mutating func parse(_ bytes: ArraySlice<UInt8>) -> HTTPParseResult {
        bytes.withUnsafeBufferPointer { parseBytes($0) }
    }

    private mutating func parseBytes(_ input: UnsafeBufferPointer<UInt8>) -> HTTPParseResult {
        if let failure { return .error(failure) }
        let result: HTTPParseResult
        if buffer.isEmpty {
            result = parseFresh(input)
        } else if buffer.count == 1 && buffer[0] == cr {
            result = parseAfterLoneCR(input)
        } else {
            result = parseBuffered(input)
        }
        if case .error(let e) = result {
            failure = e
            buffer = []
            scanned = 0
        }
        return result
    }

    /// Nothing buffered: skip leading empty lines, then parse in place if the head is complete.
    private mutating func parseFresh(_ input: UnsafeBufferPointer<UInt8>) -> HTTPParseResult {
        let n = input.count
        var start = 0
        while start < n {
            let b = input[start]
            if b == lf { return .error(HTTPError(.bareLF)) }
            if b != cr { break }
            if start + 1 == n { break }  // lone CR: its LF has not arrived yet
            guard input[start + 1] == lf else { return .error(HTTPError(.bareCR)) }
            emptyLines += 1
            guard emptyLines <= limits.maxLeadingEmptyLines else {
                return .error(HTTPError(.tooManyEmptyLines))
            }
            start += 2
        }
        let rest = UnsafeBufferPointer(rebasing: input[start...])
        switch Self.scanHead(rest, from: 0, limit: limits.maxHeadBytes, lineLimit: limits.maxRequestLineBytes) {
        case .found(let length):
            emptyLines = 0
            switch Self.parseHead(UnsafeBufferPointer(rebasing: rest[..<length]), limits: limits, fields: &fieldStorage) {
            case .success(let head): return .head(head, consumed: start + length)
            case .failure(let e): return .error(e)
            }
        case .needMore(let resume):
            // scanHead guarantees rest.count <= maxHeadBytes here.
            buffer.append(contentsOf: rest)
            scanned = resume
            return .needMore
        case .failed(let e):
            return .error(Self.withRequestLine(e, rest))
        }
    }

    /// A head refused before it was parsed (too large, a control byte in a field) still names its method
    /// and target in the log when its request line had arrived whole. Runs on refusals only.
    static func withRequestLine(_ e: HTTPError, _ p: UnsafeBufferPointer<UInt8>) -> HTTPError {
        guard let line = requestLine(p) else { return e }
        return HTTPError(e.kind, method: line.method, target: line.target)
    }

    /// The method and target of the incomplete head buffered, when its request line arrived whole: a head
    /// that times out (408, the caller's) names them in the log like every other refusal.
    public var partialRequestLine: (method: String, target: String)? {
        buffer.withUnsafeBufferPointer { Self.requestLine($0) }
    }

    /// The method and target of a request line at the start of `p`, if it is well formed and has ended: by CRLF,
    /// or by a bare LF or CR (refused, and still named in the log).
    static func requestLine(_ p: UnsafeBufferPointer<UInt8>) -> (method: String, target: String)? {
        var lineEnd = 0
        while lineEnd < p.count, p[lineEnd] != cr, p[lineEnd] != lf { lineEnd += 1 }
        guard lineEnd < p.count else { return nil }
        var i = 0
        while i < lineEnd, isTChar(p[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > 0, i < lineEnd, p[i] == sp else { return nil }
        i += 1
        let targetStart = i
        while i < lineEnd, p[i] != sp { i += 1 }
        guard i > targetStart, i < lineEnd else { return nil }
        return (makeString(p, 0, methodEnd), printableText(p, targetStart, i))
    }

    /// The buffer holds only the CR of a leading empty line.
    private mutating func parseAfterLoneCR(_ input: UnsafeBufferPointer<UInt8>) -> HTTPParseResult {
        guard !input.isEmpty else { return .needMore }
        guard input[0] == lf else { return .error(HTTPError(.bareCR)) }
        buffer.removeAll(keepingCapacity: true)
        scanned = 0
        emptyLines += 1
        guard emptyLines <= limits.maxLeadingEmptyLines else { return .error(HTTPError(.tooManyEmptyLines)) }
        let result = parseFresh(UnsafeBufferPointer(rebasing: input[1...]))
        if case .head(let head, let consumed) = result { return .head(head, consumed: consumed + 1) }
        return result
    }

    /// A partial head is buffered: append just enough new bytes to finish it or to
    /// prove it exceeds the limit, then rescan only the new part.
    private mutating func parseBuffered(_ input: UnsafeBufferPointer<UInt8>) -> HTTPParseResult {
        let old = buffer.count
        let room = max(0, limits.maxHeadBytes - old)
        let take = input.count <= room ? input.count : room + 1
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: input[..<take]))
        let limits = self.limits
        let from = scanned
        var fields = fieldStorage
        fieldStorage = []
        defer { fieldStorage = fields }
        let outcome: (HTTPParseResult, resume: Int) = buffer.withUnsafeBufferPointer { b in
            switch Self.scanHead(b, from: from, limit: limits.maxHeadBytes, lineLimit: limits.maxRequestLineBytes) {
            case .found(let length):
                switch Self.parseHead(UnsafeBufferPointer(rebasing: b[..<length]), limits: limits, fields: &fields) {
                case .success(let head): return (.head(head, consumed: length - old), 0)
                case .failure(let e): return (.error(e), 0)
                }
            case .needMore(let resume): return (.needMore, resume)
            case .failed(let e): return (.error(Self.withRequestLine(e, b)), 0)
            }
        }
        switch outcome.0 {
        case .head:
            buffer.removeAll(keepingCapacity: true)
            scanned = 0
            emptyLines = 0
        case .needMore:
            scanned = outcome.resume
        case .error:
            break
        }
        return outcome.0
    }

    enum Scan {
        case found(Int)
        case needMore(Int)
        case failed(HTTPError)
    }

    /// Finds the end of the head (the first empty line) in `p`, starting at `from`, while
    /// rejecting bare CR/LF and control bytes as early as possible. `p` starts at a request
    /// line (never at CR or LF). Fails with 431 once more than `limit` bytes hold no end, and with 414
    /// as soon as the request line runs past `lineLimit` bytes: checked byte by byte in order, so the
    /// answer never depends on how the bytes were split across reads.
    static func scanHead(_ p: UnsafeBufferPointer<UInt8>, from: Int, limit: Int, lineLimit: Int) -> Scan {
        let n = p.count
        let end = min(n, max(0, limit))
        var i = from
        // Resuming past the line limit means the request line already ended (else it failed then).
        var requestLineEnded = from > lineLimit
        if !requestLineEnded { for k in 0..<min(from, n) where p[k] == lf { requestLineEnded = true; break } }
        while i < end {
            // Eight bytes at a time up to the first control byte or DEL (CR and LF are control bytes): the byte
            // steps below would only pass the others. Not past the request-line limit, whose byte must be seen.
            while i + 8 <= end && (requestLineEnded || i + 8 <= lineLimit) {
                let found = controlOrDELBytes(UInt64(littleEndian: UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: UInt64.self)))
                if found == 0 { i += 8; continue }
                i += found.trailingZeroBitCount >> 3
                break
            }
            if i >= end { break }
            let b = p[i]
            // RFC 9112 §3: a request line longer than we parse gets 414.
            if !requestLineEnded && i >= lineLimit && b != cr && b != lf { return .failed(HTTPError(.requestLineTooLong)) }
            if b == lf { requestLineEnded = true }
            if b >= 0x20 {
                if b == del { return .failed(HTTPError(.controlCharacter)) }
            } else if b == cr {
                if i + 1 >= n { return .needMore(i) }  // recheck this CR once its successor arrives
                if p[i + 1] != lf { return .failed(HTTPError(.bareCR)) }
            } else if b == lf {
                if i == 0 || p[i - 1] != cr { return .failed(HTTPError(.bareLF)) }
                if i >= 3 && p[i - 2] == lf { return .found(i + 1) }
            } else if b != ht {
                return .failed(HTTPError(.controlCharacter))
            }
            i += 1
        }
        if n > limit { return .failed(HTTPError(.headTooLarge)) }
        return .needMore(i)
    }

    /// The eight bytes of `w` (little-endian: the first byte lowest) with the high bit set for bytes below
    /// 0x20 or equal to 0x7F: the classic "has less than" and "has zero byte" word tricks (n = 0x20 <= 128).
    /// Zero exactly when there is no such byte, and the lowest set bit marks the first one exactly (a borrow
    /// can only mark bytes above it).
    @inline(__always)
    static func controlOrDELBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let below20 = (w &- ones &* 0x20) & ~w & highs
        let del = w ^ (ones &* 0x7F)
        let isDEL = (del &- ones) & ~del & highs
        return below20 | isDEL
    }

    /// Parses a complete head. `p` ends with CRLF CRLF, and `scanHead` has already
    /// guaranteed every CR is followed by LF, every LF preceded by CR, and no control
    /// bytes other than HTAB; bounds are still checked so a bug cannot read past `p`.
    static func parseHead(_ p: UnsafeBufferPointer<UInt8>, limits: HTTPLimits) -> Result<HTTPRequestHead, HTTPError> {
        var fields: [HTTPField] = []
        return parseHead(p, limits: limits, fields: &fields)
    }

    /// `parseHead`, the fields going into `fields`' storage (emptied first; storage another head still shares is
    /// left to it, copy on write).
    static func parseHead(_ p: UnsafeBufferPointer<UInt8>, limits: HTTPLimits, fields: inout [HTTPField]) -> Result<HTTPRequestHead, HTTPError> {
        @inline(__always) func fail(_ kind: HTTPError.Kind) -> Result<HTTPRequestHead, HTTPError> {
            .failure(HTTPError(kind))
        }
        let n = p.count
        var i = 0

        // method SP
        while i < n, p[i] != sp, p[i] != cr {
            guard isTChar(p[i]) else { return fail(.invalidMethod) }
            i += 1
        }
        guard i < n, p[i] == sp else { return fail(.invalidRequestLine) }
        guard i > 0 else { return fail(.invalidMethod) }
        let methodEnd = i
        i += 1

        // request-target SP: a byte it may not hold is refused once the target is delimited, so the
        // refusal can name it (escaped) in the log.
        let targetStart = i
        var queryMark = -1
        var targetRefusal: HTTPError.Kind?
        while i < n, p[i] != sp, p[i] != cr {
            let b = p[i]
            if b <= 0x20 || b >= 0x7F {
                if targetRefusal == nil { targetRefusal = .invalidTarget }
            } else if b == hash {
                // RFC 9112 §3.2, RFC 3986 §3.5: a fragment is never sent; `/admin#/../public` must not reach
                // PATH_INFO as the same text `%23` decodes to.
                if targetRefusal == nil { targetRefusal = .fragmentInTarget }
            } else if b == questionMark, queryMark < 0 {
                queryMark = i
            }
            i += 1
        }
        guard i > targetStart, i < n, p[i] == sp else { return fail(targetRefusal ?? .invalidRequestLine) }
        let targetEnd = i
        i += 1
        // From here the method and target are delimited: every refusal carries them for the log (the target
        // escaped where it holds bytes that are not visible ASCII).
        @inline(__always) func refuse(_ kind: HTTPError.Kind) -> Result<HTTPRequestHead, HTTPError> {
            .failure(HTTPError(kind, method: makeString(p, 0, methodEnd), target: printableText(p, targetStart, targetEnd)))
        }
        if let targetRefusal { return refuse(targetRefusal) }

        // "HTTP/" DIGIT "." DIGIT CRLF
        guard n - i >= 10,
            p[i] == 0x48, p[i + 1] == 0x54, p[i + 2] == 0x54, p[i + 3] == 0x50, p[i + 4] == 0x2F,
            isDigit(p[i + 5]), p[i + 6] == 0x2E, isDigit(p[i + 7]), p[i + 8] == cr
        else { return refuse(.invalidVersion) }
        let version = HTTPVersion(major: Int(p[i + 5] &- 0x30), minor: Int(p[i + 7] &- 0x30))
        guard version.major == 1 else { return refuse(.unsupportedVersion) }
        if let e = Self.checkTargetForm(p, methodEnd: methodEnd, targetStart: targetStart, targetEnd: targetEnd) { return refuse(e) }
        let atLeast11 = version.minor >= 1
        i += 10

        // Storage a head with very many fields grew is not kept for the next.
        // The previous head's fields stay until overwritten: a keep-alive client's next head repeats most of its
        // lines (Host, User-Agent, Accept, Cookie...), and a line the same as the one in its place keeps its
        // strings (no new string per field and request).
        if fields.capacity > 64 { fields = [] }
        if fields.capacity < 16 { fields.reserveCapacity(16) }
        var kept = 0
        var contentLength: Int?
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var expectContinue = false
        var te = TransferCodings()
        var fieldCount = 0
        var singletons = SingletonFields()

        while i < n {
            let first = p[i]
            if first == cr { break }  // the empty line ending the head
            if isOWS(first) { return refuse(.obsFold) }

            // RFC 6585 §5: too many fields is 431, like a head that is too large.
            fieldCount += 1
            if fieldCount > limits.maxFields { return refuse(.tooManyFields) }
            let nameStart = i
            var underscore = false
            while i < n, p[i] != colon {
                let b = p[i]
                // RFC 9110 §5.1: a field name is a token.
                if !isTChar(b) { return refuse(isOWS(b) ? .whitespaceBeforeColon : .invalidFieldName) }
                if b == 0x5F { underscore = true }
                i += 1
            }
            guard i < n, i > nameStart else { return refuse(.invalidFieldName) }
            let nameEnd = i
            i += 1

            while i < n, isOWS(p[i]) { i += 1 }
            let valueStart = i
            // The line's end by memchr: scanHead let no control byte but HTAB (and CR LF) through, so the bytes
            // before the CR need no look one by one; trailing whitespace is trimmed back from it.
            guard i < n, let found = memchr(p.baseAddress! + i, Int32(cr), n - i) else { return refuse(.invalidFieldValue) }
            i = UnsafeRawPointer(found) - UnsafeRawPointer(p.baseAddress!)
            var valueEnd = i
            while valueEnd > valueStart, isOWS(p[valueEnd - 1]) { valueEnd -= 1 }
            guard i + 1 < n else { return refuse(.invalidFieldValue) }
            if i - nameStart > limits.maxFieldBytes { return refuse(.fieldTooLarge) }
            i += 2  // CRLF

            if underscore {
                switch limits.underscoreFields {
                case .drop: continue
                case .refuse: return refuse(.underscoreInFieldName)
                case .keep: break
                }
            }

            // The line the same as the previous head's in its place (a keep-alive client repeats most of them):
            // its field is kept, strings and all, and what checking its value alone would find was found then
            // (a field is stored only once its line passed). (Through the buffer: each element is looked at in
            // place, not copied with its strings retained.)
            let same = kept < fields.count && fields.withUnsafeBufferPointer { b in
                b[kept].rawValue == nil && sameText(b[kept].name, p, nameStart, nameEnd) && sameText(b[kept].value, p, valueStart, valueEnd)
            }
            // Only the framing-relevant names are inspected, on bytes, dispatched by length.
            switch nameEnd - nameStart {
            case 4 where equalsLowercased(p, nameStart, nameEnd, "host"):
                hostCount += 1
                // RFC 9112 §3.2: a Host that is not a valid host[:port] gets 400.
                if !same && !isValidAuthority(p, valueStart, valueEnd, requirePort: false) { return refuse(.invalidHost) }
            case 6 where equalsLowercased(p, nameStart, nameEnd, "expect"):
                if equalsLowercased(p, valueStart, valueEnd, "100-continue") { expectContinue = true }
            case 10 where equalsLowercased(p, nameStart, nameEnd, "connection"):
                _ = forEachListElement(p, valueStart, valueEnd) { s, e in
                    if equalsLowercased(p, s, e, "close") {
                        connectionClose = true
                    } else if equalsLowercased(p, s, e, "keep-alive") {
                        connectionKeepAlive = true
                    }
                    return true
                }
            case 14 where equalsLowercased(p, nameStart, nameEnd, "content-length"):
                guard let value = parseContentLength(p, valueStart, valueEnd) else {
                    return refuse(.invalidContentLength)
                }
                // RFC 9110 §8.6: repeated fields are one list, refused like `5, 5` (see parseContentLength).
                if contentLength != nil { return refuse(.conflictingContentLength) }
                contentLength = value
            case 17 where equalsLowercased(p, nameStart, nameEnd, "transfer-encoding"):
                if let e = te.add(p, valueStart, valueEnd) { return refuse(e) }
            default:
                // RFC 9110 §5.3: a field whose value is not a list must not repeat; two values of one
                // Content-Type (or Authorization...) would be read one way here and another by a proxy.
                if let name = singletons.repeated(p, nameStart, nameEnd) { return refuse(.duplicateField(name)) }
            }
            if same {
                kept += 1
                continue
            }
            let valueBytes = UnsafeBufferPointer(rebasing: p[valueStart..<valueEnd])
            let field = HTTPField(name: commonFieldName(p, nameStart, nameEnd) ?? makeString(p, nameStart, nameEnd),
                                  value: makeString(p, valueStart, valueEnd),
                                  rawValue: hasHighByte(valueBytes) ? Array(valueBytes) : nil)
            if kept < fields.count { fields[kept] = field } else { fields.append(field) }
            kept += 1
        }
        if fields.count > kept { fields.removeSubrange(kept...) }

        if hostCount > 1 { return refuse(.duplicateHost) }
        if atLeast11 && hostCount == 0 { return refuse(.missingHost) }

        let framing: HTTPBodyFraming
        if te.present {
            if contentLength != nil { return refuse(.contentLengthWithTransferEncoding) }
            // RFC 9112 §6.1: Transfer-Encoding on 1.0 means faulty framing.
            if !atLeast11 { return refuse(.invalidTransferEncoding) }
            if let e = te.finish() { return refuse(e) }
            framing = .chunked
        } else if let contentLength {
            if let maxBody = limits.maxBodyBytes, contentLength > maxBody { return refuse(.bodyTooLarge) }
            framing = .contentLength(contentLength)
        } else {
            framing = .none
        }

        let method = commonMethod(p, methodEnd) ?? makeString(p, 0, methodEnd)
        // RFC 9112 §3.2.2: with an absolute-form target the target's authority is the host, whatever
        // Host says: the head is normalised to Host = authority and an origin-form target, so the app
        // and the access log cannot see one host while a proxy routed on the other.
        var pathStart = targetStart
        if let (authStart, authEnd) = absoluteFormAuthority(p, methodEnd: methodEnd, targetStart: targetStart, targetEnd: targetEnd) {
            if !isValidAuthority(p, authStart, authEnd, requirePort: false) || authStart == authEnd { return refuse(.invalidHost) }
            let authority = makeString(p, authStart, authEnd)
            fields.removeAll { $0.name.utf8.count == 4 && $0.name.lowercased() == "host" }
            fields.append(HTTPField(name: "Host", value: authority, rawValue: nil))
            pathStart = authEnd
        }
        let pathEnd = queryMark >= 0 ? queryMark : targetEnd
        var path = pathEnd - pathStart == 1 && p[pathStart] == 0x2F ? "/" : makeString(p, pathStart, pathEnd)
        if path.isEmpty { path = methodEnd == 7 && equalsExact(p, 0, 7, "OPTIONS") && queryMark < 0 ? "*" : "/" }
        let query: String? = queryMark >= 0 ? makeString(p, queryMark + 1, targetEnd) : nil
        return .success(HTTPRequestHead(
            method: method, path: path, query: query, version: version,
            headers: HTTPHeaders(fields),
            keepAlive: atLeast11 ? !connectionClose : (connectionKeepAlive && !connectionClose),
            expectContinue: atLeast11 && expectContinue,
            framing: framing))
    }

    /// Parses a Content-Length value: exactly one decimal. RFC 9110 §8.6 lets a recipient accept a list
    /// of identical values (`5, 5`); we refuse any list, since a proxy in front may have read it another
    /// way. nil when invalid.
    static func parseContentLength(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard start < end else { return nil }
        var value = 0
        for k in start..<end {
            let b = p[k]
            guard isDigit(b) else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b &- 0x30))
            if o1 || o2 { return nil }
            value = a
        }
        return value
    }

    /// The authority's bounds in an absolute-form target (`scheme://authority/path?query`), else nil.
    static func absoluteFormAuthority(_ p: UnsafeBufferPointer<UInt8>, methodEnd: Int, targetStart: Int, targetEnd: Int) -> (Int, Int)? {
        let first = p[targetStart]
        if first == 0x2F || first == 0x2A || (methodEnd == 7 && equalsExact(p, 0, 7, "CONNECT")) { return nil }
        var k = targetStart
        while k + 2 < targetEnd, !(p[k] == colon && p[k + 1] == 0x2F && p[k + 2] == 0x2F) { k += 1 }
        guard k + 2 < targetEnd else { return nil }
        let start = k + 3
        var end = start
        while end < targetEnd, p[end] != 0x2F, p[end] != questionMark { end += 1 }
        return (start, end)
    }

    /// RFC 9112 §3.2: origin-form (`/path`) for every method but CONNECT; asterisk-form (`*`) only with
    /// OPTIONS; authority-form (`host:port`) only, and always, with CONNECT; absolute-form
    /// (`scheme://...`) with any other method. nil when the form fits the method.
    static func checkTargetForm(_ p: UnsafeBufferPointer<UInt8>, methodEnd: Int, targetStart: Int, targetEnd: Int) -> HTTPError.Kind? {
        let isConnect = methodEnd == 7 && equalsExact(p, 0, 7, "CONNECT")
        let first = p[targetStart]
        if isConnect {
            return isValidAuthority(p, targetStart, targetEnd, requirePort: true) ? nil : .invalidTargetForm
        }
        if first == 0x2F { return nil }  // "/"
        if first == 0x2A {  // "*"
            let isOptions = methodEnd == 7 && equalsExact(p, 0, 7, "OPTIONS")
            return targetEnd - targetStart == 1 && isOptions ? nil : .invalidTargetForm
        }
        // absolute-form: scheme "://" (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
        var k = targetStart
        guard isAlpha(p[k]) else { return .invalidTargetForm }
        while k < targetEnd, isAlpha(p[k]) || isDigit(p[k]) || p[k] == 0x2B || p[k] == 0x2D || p[k] == 0x2E { k += 1 }
        guard targetEnd - k >= 3, p[k] == colon, p[k + 1] == 0x2F, p[k + 2] == 0x2F else { return .invalidTargetForm }
        return nil
    }
}

/// Accumulates Transfer-Encoding codings across all Transfer-Encoding fields, in order.
struct TransferCodings {
    var present = false
    var count = 0
    var chunkedSeen = false
    var unknownSeen = false

    /// Adds one field value; returns an error kind as soon as the list is certainly invalid.
    mutating func add(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPError.Kind? {
        present = true
        var error: HTTPError.Kind?
        _ = forEachListElement(p, start, end) { s, e in
            if s == e { return true }  // empty list elements are allowed and ignored
            var k = s
            while k < e, isTChar(p[k]) { k += 1 }
            let nameEnd = k
            guard nameEnd > s else { error = .invalidTransferEncoding; return false }
            while k < e, isOWS(p[k]) { k += 1 }
            let hasParameters = k < e
            if hasParameters && p[k] != semicolon { error = .invalidTransferEncoding; return false }
            // Anything after chunked means chunked is not the final coding (or appears twice).
            if chunkedSeen { error = .invalidTransferEncoding; return false }
            if equalsLowercased(p, s, nameEnd, "chunked") {
                if hasParameters { error = .invalidTransferEncoding; return false }
                chunkedSeen = true
            } else {
                unknownSeen = true
            }
            count += 1
            return true
        }
        return error
    }

    /// Final verdict once all fields are seen.
    func finish() -> HTTPError.Kind? {
        if count == 0 || !chunkedSeen { return .invalidTransferEncoding }  // e.g. "gzip" alone
        if unknownSeen { return .unsupportedTransferCoding }  // e.g. "gzip, chunked"
        return nil
    }
}

/// The request fields RFC 9110 and RFC 9111 define as a single value (not a list), besides Host and
/// Content-Length, which the parser checks itself: a second occurrence is refused.
struct SingletonFields {
    private var seen: UInt32 = 0

    /// Names by length, for a dispatch that costs one switch on the common fields.
    private static let names: [(lower: StaticString, name: String)] = [
        ("content-type", "Content-Type"), ("authorization", "Authorization"), ("proxy-authorization", "Proxy-Authorization"),
        ("if-modified-since", "If-Modified-Since"), ("if-unmodified-since", "If-Unmodified-Since"), ("if-range", "If-Range"),
        ("range", "Range"), ("max-forwards", "Max-Forwards"), ("content-range", "Content-Range"),
        ("content-location", "Content-Location"), ("date", "Date"), ("from", "From"), ("referer", "Referer"),
        ("user-agent", "User-Agent"),
    ]

    /// The field's name when it is a singleton seen before; records it otherwise.
    mutating func repeated(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String? {
        let length = end - start
        // Only the lengths of singleton names get a name comparison.
        switch length {
        case 4, 5, 7, 8, 10, 12, 13, 16, 17, 19: break
        default: return nil
        }
        for (i, n) in Self.names.enumerated() where n.lower.utf8CodeUnitCount == length && equalsLowercased(p, start, end, n.lower) {
            let bit: UInt32 = 1 << UInt32(i)
            if seen & bit != 0 { return n.name }
            seen |= bit
            return nil
        }
        return nil
    }
}

/// The usual methods as string literals: made from the bytes, each would cost a UTF-8 validation and a copy
/// per request (the same text either way).
@inline(__always)
func commonMethod(_ p: UnsafeBufferPointer<UInt8>, _ end: Int) -> String? {
    switch end {
    case 3: return equalsExact(p, 0, 3, "GET") ? "GET" : nil
    case 4: return equalsExact(p, 0, 4, "POST") ? "POST" : equalsExact(p, 0, 4, "HEAD") ? "HEAD" : nil
    default: return nil
    }
}

/// Field names clients and nginx send on most requests, spelled as they send them, as string literals (see
/// `commonMethod`); nil for any other name or spelling (it is made from its bytes).
func commonFieldName(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String? {
    @inline(__always) func pick(_ text: StaticString, _ name: String) -> String? { equalsExact(p, start, end, text) ? name : nil }
    switch end - start {
    case 4: return pick("Host", "Host")
    case 6: return pick("Accept", "Accept") ?? pick("Cookie", "Cookie")
    case 7: return pick("Referer", "Referer")
    case 9: return pick("X-Real-IP", "X-Real-IP")
    case 10: return pick("User-Agent", "User-Agent") ?? pick("Connection", "Connection")
    case 12: return pick("Content-Type", "Content-Type")
    case 14: return pick("Content-Length", "Content-Length")
    case 15: return pick("Accept-Encoding", "Accept-Encoding") ?? pick("Accept-Language", "Accept-Language")
        ?? pick("X-Forwarded-For", "X-Forwarded-For")
    case 17: return pick("X-Forwarded-Proto", "X-Forwarded-Proto")
    default: return nil
    }
}

/// Whether a byte of `b` is 0x80 or above (eight at a time).
@inline(__always)
func hasHighByte(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let base = b.baseAddress else { return false }
    let raw = UnsafeRawPointer(base)
    var i = 0, any: UInt64 = 0
    while i + 8 <= b.count { any |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self); i += 8 }
    while i < b.count { any |= UInt64(b[i]); i += 1 }
    return any & 0x8080_8080_8080_8080 != 0
}

/// Whether `s` is exactly the bytes `p[start..<end]` (a field kept from the previous head: `parseHead`). A value
/// whose bytes are not all ASCII never matches (its field carries `rawValue`, and the caller checks it has none).
@inline(__always)
func sameText(_ s: String, _ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
    let count = end - start
    guard s.utf8.count == count else { return false }
    guard count > 0 else { return true }
    if let same = s.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, p.baseAddress! + start, count) == 0 }) {
        return same
    }
    var copy = s
    return copy.withUTF8 { memcmp($0.baseAddress!, p.baseAddress! + start, count) == 0 }
}
