/// How a response body will be delimited, as the caller knows it.
public enum HTTPResponseBody: Sendable, Hashable {
    /// Exactly this many bytes (write `Content-Length`). Negative values are written as 0.
    case contentLength(Int)
    /// Length unknown: chunked for HTTP/1.1 clients; for HTTP/1.0 clients the body is
    /// delimited by closing the connection.
    case streamed
}

/// What the caller must do after `appendHead`, since the writer may have to change the
/// framing or connection handling it was asked for.
public struct HTTPResponsePlan: Sendable, Hashable {
    /// Whether body bytes may be written at all (false for HEAD, 1xx, 204, 205 and 304).
    public var sendsBody: Bool
    /// Whether body bytes must be wrapped with `appendChunk` and ended with `lastChunk`.
    public var chunked: Bool
    /// Whether the connection stays open after this response.
    public var keepAlive: Bool

    /// A plan from its three decisions.
    public init(sendsBody: Bool, chunked: Bool, keepAlive: Bool) {
        self.sendsBody = sendsBody
        self.chunked = chunked
        self.keepAlive = keepAlive
    }
}

/// Serialises responses into caller-provided byte buffers, without building
/// intermediate Strings. All functions are pure.
public enum HTTPResponseWriter {
    /// `HTTP/1.1 100 Continue`, sent before reading a body when `expectContinue` is set.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// The last chunk of a chunked body, with an empty trailer section.
    public static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// Appends a status line, `headers`, framing and Connection fields, and the blank line.
    ///
    /// - `version`: the request's version; responses always say HTTP/1.1 (RFC 9110 §6.2),
    ///   but framing and Connection follow what the client understands.
    /// - `keepAlive`: whether the server wants to keep the connection (pass false if the
    ///   request did not allow it; see the `for request:` overload).
    /// - `headRequest`: HEAD: framing fields as for GET, but no body.
    ///
    /// Caller fields named Content-Length, Transfer-Encoding, Connection or Keep-Alive are dropped:
    /// the writer owns framing and connection management so it can never contradict the body it is
    /// told about or the server's real keep-alive timeout (a Keep-Alive field is hop-by-hop, RFC 9112
    /// §9.3 and RFC 9110 §7.6.1, and only the server knows its timeout). A caller's `Connection: close`
    /// is honoured: the plan says close and the head says so; its other Connection options (`upgrade`)
    /// go out in the writer's one Connection field.
    /// A field with a `rawValue` is sent as those bytes (a WSGI app's latin-1 text, PEP 3333); so is
    /// `rawReason`. Control bytes (except HTAB) in names, values and reasons are replaced by SP to
    /// rule out response splitting; callers should still send valid tokens as names.
    /// `date`: the `Date` field's value (`HTTPDate.format`, RFC 9110 §6.6.1), unless `headers` has one.
    @discardableResult
    public static func appendHead(
        status: Int, reason: String? = nil, rawReason: [UInt8]? = nil, headers: HTTPHeaders = [:], body: HTTPResponseBody,
        version: HTTPVersion = .http1_1, keepAlive: Bool = true, headRequest: Bool = false, date: [UInt8]? = nil,
        fieldLines: HTTPFieldLinesCache? = nil, to buffer: inout [UInt8]
    ) -> HTTPResponsePlan {
        let bodyless = isBodyless(status)
        // RFC 9110 §15.3.6: a 205 carries no content, and unlike 204 (RFC 9112 §6.3) its framing is read, so
        // it says Content-Length: 0 whatever the caller's body.
        let resetContent = status == 205
        let understandsChunked = version >= .http1_1
        var plan = HTTPResponsePlan(sendsBody: !bodyless && !resetContent && !headRequest, chunked: false, keepAlive: keepAlive)
        // The head's pieces are gathered on the stack and appended in one copy: each `append(contentsOf:)` to the
        // array costs about 90 instructions whatever its size, and a head has eight pieces or more.
        return withUnsafeTemporaryAllocation(byteCount: HeadStaging.capacity, alignment: 1) { room in
            var w = HeadStaging(room)
            if (rawReason?.isEmpty ?? true) && reason == nil, let line = statusLineStatic(status) {
                w.put(line, &buffer)
            } else {
                w.put("HTTP/1.1 ", &buffer)
                w.putDecimal(status, &buffer)
                w.put(" ", &buffer)
                if let rawReason, !rawReason.isEmpty {
                    w.flush(&buffer)
                    appendSanitized(rawReason, to: &buffer)
                } else if let reason {
                    w.flush(&buffer)
                    appendSanitized(reason, to: &buffer)
                } else {
                    w.put(reasonPhraseStatic(status), &buffer)
                }
                w.put("\r\n", &buffer)
            }
            // The app's own Date (its clock is the origin's too) is sent instead of ours, never beside it.
            func appendDate(unless hasDate: Bool) {
                guard let date, !hasDate else { return }
                w.put("Date: ", &buffer)
                w.put(date, &buffer)
                w.put("\r\n", &buffer)
            }
            // The caller's Connection options other than close and keep-alive (`upgrade` beside an Upgrade field:
            // RFC 9110 §7.8), written in the one Connection field below.
            var connectionOptions: [UInt8] = []
            if let fieldLines {
                let lines = fieldLines.lines(for: headers)
                appendDate(unless: lines.hasDate)
                w.put(lines.bytes, &buffer)
                if lines.connection.close { plan.keepAlive = false }
                connectionOptions = lines.connection.options
            } else {
                appendDate(unless: hasDateField(headers.fields))
                w.flush(&buffer)
                let connection = appendFieldLines(headers.fields, to: &buffer)
                if connection.close { plan.keepAlive = false }
                connectionOptions = connection.options
            }

            if resetContent {
                w.put("Content-Length: 0\r\n", &buffer)
            } else if !bodyless {
                switch body {
                case .contentLength(let n):
                    w.put("Content-Length: ", &buffer)
                    w.putDecimal(max(0, n), &buffer)
                    w.put("\r\n", &buffer)
                case .streamed:
                    if headRequest {
                        break  // no body follows, so no framing is needed and keep-alive is safe
                    } else if understandsChunked {
                        w.put("Transfer-Encoding: chunked\r\n", &buffer)
                        plan.chunked = true
                    } else {
                        plan.keepAlive = false  // HTTP/1.0: the body ends when we close
                    }
                }
            }

            if connectionOptions.isEmpty {
                if understandsChunked {
                    if !plan.keepAlive { w.put("Connection: close\r\n", &buffer) }
                } else {
                    w.put(plan.keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n", &buffer)
                }
            } else {
                w.put("Connection: ", &buffer)
                w.flush(&buffer)
                buffer.append(contentsOf: connectionOptions)
                if !plan.keepAlive {
                    w.put(", close", &buffer)
                } else if !understandsChunked {
                    w.put(", keep-alive", &buffer)
                }
                w.put("\r\n", &buffer)
            }
            w.put("\r\n", &buffer)
            w.flush(&buffer)
            return plan
        }
    }

    /// Statuses whose response has no content and no framing fields (RFC 9112 §6.3: 1xx, 204, 304).
    public static func isBodyless(_ status: Int) -> Bool {
        (100...199).contains(status) || status == 204 || status == 304
    }

    /// Statuses whose response never carries content, whatever the app gives: the bodyless ones and 205
    /// (RFC 9110 §15.3.6, sent with Content-Length: 0).
    public static func sendsNoContent(_ status: Int) -> Bool { isBodyless(status) || status == 205 }

    /// Like the main `appendHead`, taking version, HEAD-ness and keep-alive from `request`;
    /// `keepAlive: false` lets the server close anyway (e.g. shutting down, recycling).
    @discardableResult
    public static func appendHead(
        status: Int, reason: String? = nil, rawReason: [UInt8]? = nil, headers: HTTPHeaders = [:], body: HTTPResponseBody,
        for request: HTTPRequestHead, keepAlive: Bool = true, date: [UInt8]? = nil, fieldLines: HTTPFieldLinesCache? = nil,
        to buffer: inout [UInt8]
    ) -> HTTPResponsePlan {
        appendHead(
            status: status, reason: reason, rawReason: rawReason, headers: headers, body: body, version: request.version,
            keepAlive: keepAlive && request.keepAlive, headRequest: request.isHeadMethod, date: date, fieldLines: fieldLines,
            to: &buffer)
    }

    /// The first of an app's response header names that is not a token (RFC 9110 §5.1), or nil: such a name
    /// is never written (a response carrying one is the app's error, answered 500 by the caller).
    public static func firstInvalidFieldName(_ headers: HTTPHeaders) -> String? {
        headers.fields.first(where: { !isFieldName($0.name) })?.name
    }

    /// What is wrong with a response header name that is not a token, in plain words.
    public static func invalidNameMessage(_ name: String) -> String {
        invalidNameMessage(quoted: name.debugDescription)
    }

    /// The message for a name already shown quoted (a Python app's in Python's notation).
    public static func invalidNameMessage(quoted: String) -> String {
        "response header name \(quoted) is not a token (RFC 9110 §5.1: letters, digits and !#$%&'*+-.^_`|~ only)"
    }

    /// Whether `fields` hold a Date field.
    static func hasDateField(_ fields: [HTTPField]) -> Bool {
        fields.contains(where: { $0.name.utf8.count == 4 && equalsIgnoringASCIICase($0.name, "date") })
    }

    /// What the caller's Connection fields say: `close`, and their other options (`upgrade`, ...) as one list.
    struct ConnectionFields {
        var close = false
        var options: [UInt8] = []
    }

    /// Appends the caller's own fields as `appendHead` sends them (framing and Connection fields left out), and
    /// tells what its Connection fields say.
    static func appendFieldLines(_ fields: [HTTPField], to buffer: inout [UInt8]) -> ConnectionFields {
        var connection = ConnectionFields()
        for field in fields {
            switch ownedField(field.name) {
            case .framing: continue
            case .connection:
                readConnectionField(field.rawValue ?? Array(field.value.utf8), into: &connection)
                continue
            case nil: break
            }
            appendSanitized(field.name, to: &buffer)
            buffer.appendStatic(": ")
            if let raw = field.rawValue { appendSanitized(raw, to: &buffer) } else { appendSanitized(field.value, to: &buffer) }
            buffer.appendStatic("\r\n")
        }
        return connection
    }

    /// A Connection value's elements (RFC 9110 §7.6.1, any case): `close` noted, `keep-alive` dropped (the writer
    /// says it), the other tokens kept in order without repeats.
    private static func readConnectionField(_ value: [UInt8], into connection: inout ConnectionFields) {
        value.withUnsafeBufferPointer { b in
            _ = forEachListElement(b, 0, b.count) { s, e in
                if equalsLowercased(b, s, e, "close") {
                    connection.close = true
                } else if !equalsLowercased(b, s, e, "keep-alive"), s < e,
                          b[s..<e].allSatisfy(isTChar), ownedField(String(decoding: b[s..<e], as: UTF8.self)) == nil {
                    // A token naming no field the writer owns (an option naming Content-Length would have a proxy
                    // drop the framing it read).
                    let element = Array(b[s..<e])
                    @inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
                    let known = connection.options.split(separator: 0x2C).contains {
                        $0.drop(while: { $0 == sp }).elementsEqual(element, by: { lower($0) == lower($1) }) }
                    if !known {
                        if !connection.options.isEmpty { connection.options.append(contentsOf: [0x2C, sp]) }
                        connection.options += element
                    }
                }
                return true
            }
        }
    }

    /// Appends one chunk (`<hex size>\r\n<data>\r\n`). Empty data appends nothing,
    /// because a zero-size chunk would end the body.
    public static func appendChunk(_ data: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        guard !data.isEmpty else { return }
        buffer.appendHex(data.count)
        buffer.appendStatic("\r\n")
        buffer.append(contentsOf: data)
        buffer.appendStatic("\r\n")
    }

    /// Appends one chunk; empty data appends nothing.
    public static func appendChunk(_ data: [UInt8], to buffer: inout [UInt8]) {
        data.withUnsafeBytes { appendChunk($0, to: &buffer) }
    }

    /// Appends just a chunk's size line, for callers that write the data themselves
    /// (e.g. with writev) followed by `"\r\n"`. `count` must be > 0.
    public static func appendChunkHeader(count: Int, to buffer: inout [UInt8]) {
        buffer.appendHex(max(0, count))
        buffer.appendStatic("\r\n")
    }

    /// One encoded chunk as a new array; empty data gives an empty array.
    public static func chunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 20)
        appendChunk(data, to: &out)
        return out
    }

    /// A complete `Connection: close` response for a rejected request: status line, Date (when given),
    /// `text/plain` body `errorBody(status:)`, Content-Length. Meant for 4xx/5xx.
    public static func errorResponse(status: Int, date: [UInt8]? = nil) -> [UInt8] {
        let body = errorBody(status: status)
        var out: [UInt8] = []
        out.reserveCapacity(160 + body.count)
        appendHead(
            status: status, headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: .contentLength(body.count), keepAlive: false, date: date, to: &out)
        out.append(contentsOf: body)
        return out
    }

    /// The body of `errorResponse(status:)`: "<status> <reason>\n" (its length is what an access log counts).
    public static func errorBody(status: Int) -> [UInt8] {
        var body: [UInt8] = []
        body.appendDecimal(status)
        body.append(sp)
        body.appendStatic(reasonPhraseStatic(status))
        body.append(lf)
        return body
    }

    /// `errorResponse(status: error.status)`.
    public static func errorResponse(for error: HTTPError, date: [UInt8]? = nil) -> [UInt8] {
        errorResponse(status: error.status, date: date)
    }

    /// The standard reason phrase for `status` (RFC 9110 wording), or "Unknown".
    public static func reasonPhrase(_ status: Int) -> String {
        String(describing: reasonPhraseStatic(status))
    }

    /// The whole status line of the most common responses with their standard phrase, written in one copy.
    static func statusLineStatic(_ status: Int) -> StaticString? {
        switch status {
        case 200: "HTTP/1.1 200 OK\r\n"
        case 204: "HTTP/1.1 204 No Content\r\n"
        case 301: "HTTP/1.1 301 Moved Permanently\r\n"
        case 302: "HTTP/1.1 302 Found\r\n"
        case 304: "HTTP/1.1 304 Not Modified\r\n"
        case 404: "HTTP/1.1 404 Not Found\r\n"
        default: nil
        }
    }

    static func reasonPhraseStatic(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Unknown"
        }
    }

    /// A caller field the writer decides itself.
    private enum OwnedField { case framing, connection }

    private static func ownedField(_ name: String) -> OwnedField? {
        switch name.utf8.count {
        case 10:
            if equalsIgnoringASCIICase(name, "connection") { return .connection }
            return equalsIgnoringASCIICase(name, "keep-alive") ? .framing : nil
        case 14: return equalsIgnoringASCIICase(name, "content-length") ? .framing : nil
        case 17: return equalsIgnoringASCIICase(name, "transfer-encoding") ? .framing : nil
        default: return nil
        }
    }

    /// Appends `bytes`, replacing control bytes other than HTAB by SP.
    private static func appendSanitized(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        guard bytes.contains(where: isForbiddenControl) else { return buffer.append(contentsOf: bytes) }
        for b in bytes { buffer.append(isForbiddenControl(b) ? sp : b) }
    }

    /// Appends the UTF-8 of `s`, replacing control bytes other than HTAB by SP.
    private static func appendSanitized(_ s: String, to buffer: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            guard bytes.contains(where: isForbiddenControl) else { return buffer.append(contentsOf: bytes) }
            for b in bytes { buffer.append(isForbiddenControl(b) ? sp : b) }
        }
    }
}

/// The field lines `appendHead` writes for a response's own headers, kept for the next response with the same
/// fields: a server whose app sends one constant header list (a WSGI app's module-level list) writes and
/// checks them once, not per response. "The same fields" is the same array storage: the cache holds a copy
/// of the array, so while it is cached that storage can be neither freed (its address reused by other
/// fields) nor changed in place (copy-on-write copies it first).
public final class HTTPFieldLinesCache {
    struct Lines {
        var bytes: [UInt8] = []
        /// A Date field is among them: ours is not added.
        var hasDate = false
        /// What its Connection fields say.
        var connection = HTTPResponseWriter.ConnectionFields()
    }

    private var fields: [HTTPField] = []
    private var cached = Lines()

    public init() {}

    func lines(for headers: HTTPHeaders) -> Lines {
        let same = headers.fields.withUnsafeBufferPointer { a in
            fields.withUnsafeBufferPointer { b in a.count == b.count && (a.isEmpty || a.baseAddress == b.baseAddress) }
        }
        if same { return cached }
        var made = Lines()
        made.hasDate = HTTPResponseWriter.hasDateField(headers.fields)
        made.connection = HTTPResponseWriter.appendFieldLines(headers.fields, to: &made.bytes)
        fields = headers.fields
        cached = made
        return made
    }
}

/// A response head's pieces gathered in a small stack buffer before they go to the output array in one copy;
/// what does not fit goes there at once (after what is gathered, so the order holds).
struct HeadStaging {
    static let capacity = 512
    private let room: UnsafeMutableRawBufferPointer
    private var used = 0

    init(_ room: UnsafeMutableRawBufferPointer) { self.room = room }

    @inline(__always)
    mutating func put(_ bytes: UnsafeRawBufferPointer, _ buffer: inout [UInt8]) {
        if bytes.count > room.count - used {
            flush(&buffer)
            if bytes.count > room.count { buffer.append(contentsOf: bytes); return }
        }
        if bytes.count > 0 { (room.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        used += bytes.count
    }

    @inline(__always)
    mutating func put(_ s: StaticString, _ buffer: inout [UInt8]) {
        put(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), &buffer)
    }

    @inline(__always)
    mutating func put(_ bytes: [UInt8], _ buffer: inout [UInt8]) {
        bytes.withUnsafeBytes { put($0, &buffer) }
    }

    /// `value` (not negative) in decimal.
    mutating func putDecimal(_ value: Int, _ buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { digits in
            var v = UInt(value.magnitude), i = 24
            repeat {
                i -= 1
                digits[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
            } while v > 0
            if value < 0 {
                i -= 1
                digits[i] = 0x2D
            }
            put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(digits)[i...]), &buffer)
        }
    }

    mutating func flush(_ buffer: inout [UInt8]) {
        guard used > 0 else { return }
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: room[..<used]))
        used = 0
    }
}
