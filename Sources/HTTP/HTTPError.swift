/// Why a request was rejected, and the status the server should answer with before
/// closing the connection. Every parser failure is terminal for the connection, because
/// after a framing error the position of the next request cannot be trusted.
public struct HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The specific rule that was violated (useful for logs and tests).
    public enum Kind: Sendable, Hashable {
        /// Request head (or chunked trailer section) larger than `maxHeadBytes`: 431.
        case headTooLarge
        /// Body larger than `maxBodyBytes`: 413.
        case bodyTooLarge
        /// More empty lines before the request line than `maxLeadingEmptyLines`: 400.
        case tooManyEmptyLines
        /// CR not followed by LF: 400.
        case bareCR
        /// LF not preceded by CR (bare-LF line endings are rejected): 400.
        case bareLF
        /// A control character other than HTAB in the head: 400.
        case controlCharacter
        /// Method is empty or not a token: 400.
        case invalidMethod
        /// Request-target contains bytes outside visible ASCII: 400.
        case invalidTarget
        /// Request-target contains `#`: a fragment, which clients never send (RFC 9112 §3.2, RFC 3986 §3.5): 400.
        case fragmentInTarget
        /// Request line does not have exactly three space-separated parts: 400.
        case invalidRequestLine
        /// Version is not `HTTP/<digit>.<digit>`: 400.
        case invalidVersion
        /// Well-formed version other than HTTP/1.x: 505.
        case unsupportedVersion
        /// Header line starting with whitespace (obsolete line folding): 400.
        case obsFold
        /// Whitespace between a field name and its colon: 400.
        case whitespaceBeforeColon
        /// Field name empty, not a token, or line without a colon: 400.
        case invalidFieldName
        /// Forbidden byte in a field value: 400.
        case invalidFieldValue
        /// Content-Length not a non-negative decimal that fits in Int: 400.
        case invalidContentLength
        /// Several Content-Length values that differ: 400.
        case conflictingContentLength
        /// Both Content-Length and Transfer-Encoding: 400 (request smuggling guard).
        case contentLengthWithTransferEncoding
        /// Transfer-Encoding whose final coding is not `chunked`, `chunked` twice or not
        /// last, malformed list, or any Transfer-Encoding on HTTP/1.0: 400.
        case invalidTransferEncoding
        /// Syntactically valid Transfer-Encoding ending in `chunked` but with another coding
        /// (e.g. `gzip, chunked`) we cannot decode: 501.
        case unsupportedTransferCoding
        /// HTTP/1.1 request without Host: 400.
        case missingHost
        /// More than one Host field: 400.
        case duplicateHost
        /// A field that may appear once (RFC 9110 §5.3: its value is not a list) appears twice: 400.
        /// Holds the field's name as RFC 9110 spells it.
        case duplicateField(String)
        /// Malformed chunked body (size line, data terminator, whitespace after a size without an
        /// extension): 400.
        case invalidChunk
        /// Request line longer than `maxRequestLineBytes`: 414 (RFC 9112 §3: a server that receives a
        /// request-target longer than it wishes to parse MUST respond with 414).
        case requestLineTooLong
        /// One field line longer than `maxFieldBytes`: 431 (RFC 6585 §5).
        case fieldTooLarge
        /// More field lines than `maxFields`: 431 (RFC 6585 §5).
        case tooManyFields
        /// Host is not uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2): 400 (RFC 9112 §3.2).
        case invalidHost
        /// A field name with `_` under `UnderscoreFieldPolicy.refuse`: 400.
        case underscoreInFieldName
        /// Request-target in a form its method does not allow (RFC 9112 §3.2): 400.
        case invalidTargetForm
        /// A trailer field that may only be a header field: framing, routing, content processing
        /// (RFC 9110 §6.5.1): 400.
        case forbiddenTrailerField
        /// Chunk extensions of one body above `maxChunkExtensionBytes` in total: 400.
        case chunkExtensionsTooLarge
        /// A uwsgi-protocol packet (nginx's uwsgi_pass) that is malformed or asks for what swsgi does not speak.
        case invalidUwsgiPacket(String)
    }

    /// The violated rule.
    public let kind: Kind
    /// The request's method and target when its request line was read before the error (for the log).
    public var method: String?
    public var target: String?

    /// An error for a violated rule; the status follows from the kind.
    public init(_ kind: Kind, method: String? = nil, target: String? = nil) {
        self.kind = kind
        self.method = method
        self.target = target
    }

    /// Errors are the rule they break; the request line is context.
    public static func == (a: HTTPError, b: HTTPError) -> Bool { a.kind == b.kind }
    public func hash(into h: inout Hasher) { h.combine(kind) }

    /// The status code to answer with.
    public var status: Int {
        switch kind {
        case .headTooLarge, .fieldTooLarge, .tooManyFields: 431
        case .requestLineTooLong: 414
        case .bodyTooLarge: 413
        case .unsupportedVersion: 505
        case .unsupportedTransferCoding: 501
        default: 400
        }
    }

    /// For logs: status and kind.
    public var description: String { "HTTPError(\(status), \(kind))" }

    /// What was wrong, in plain words, for the log.
    public var message: String {
        switch kind {
        case .headTooLarge: "request head larger than the limit"
        case .bodyTooLarge: "request body larger than the limit"
        case .tooManyEmptyLines: "too many empty lines before the request line"
        case .bareCR: "a CR not followed by LF in the request head"
        case .bareLF: "a line ending in LF without CR in the request head"
        case .controlCharacter: "a control character in the request head"
        case .invalidMethod: "the method is not a token"
        case .invalidTarget: "the request target has a byte outside visible ASCII"
        case .fragmentInTarget: "a '#' in the request target (a fragment is never sent, RFC 9112 §3.2)"
        case .invalidRequestLine: "the request line is not METHOD TARGET VERSION"
        case .invalidVersion: "the HTTP version is malformed"
        case .unsupportedVersion: "an HTTP version other than 1.x"
        case .obsFold: "a header line folded onto the next (obsolete line folding)"
        case .whitespaceBeforeColon: "whitespace between a header name and its colon"
        case .invalidFieldName: "a header name that is empty or not a token"
        case .invalidFieldValue: "a forbidden byte in a header value"
        case .invalidContentLength: "Content-Length is not a non-negative decimal number"
        case .conflictingContentLength: "Content-Length given more than once"
        case .contentLengthWithTransferEncoding: "both Content-Length and Transfer-Encoding"
        case .invalidTransferEncoding: "a Transfer-Encoding that does not end in chunked, or on HTTP/1.0"
        case .unsupportedTransferCoding: "a transfer coding other than chunked"
        case .missingHost: "an HTTP/1.1 request without Host"
        case .duplicateHost: "Host given more than once"
        case .duplicateField(let name): "\(name) given more than once (it may appear only once)"
        case .invalidChunk: "a malformed chunk in the chunked body"
        case .requestLineTooLong: "request line longer than the limit"
        case .fieldTooLarge: "a header line longer than the limit"
        case .tooManyFields: "more header lines than the limit"
        case .invalidHost: "Host is not a valid host[:port]"
        case .underscoreInFieldName: "a header name with an underscore"
        case .invalidTargetForm: "a request target form the method does not allow"
        case .forbiddenTrailerField: "a trailer field that may only be a header"
        case .chunkExtensionsTooLarge: "chunk extensions larger than the limit"
        case .invalidUwsgiPacket(let why): "a uwsgi packet \(why)"
        }
    }
}

/// What the parser does with a field whose name contains `_`. Apps that map fields to variables
/// (CGI/WSGI `HTTP_*`) cannot tell `Transfer_Encoding` from `Transfer-Encoding`, so such a name can
/// smuggle a value past a proxy that checked the other spelling (nginx and gunicorn drop them too).
public enum UnderscoreFieldPolicy: String, Sendable, Equatable, CaseIterable {
    /// Silently left out of the parsed head (the default, as nginx's `underscores_in_headers off`).
    case drop
    /// The request is refused with 400.
    case refuse
    /// Kept as sent.
    case keep
}

/// Resource limits applied while parsing. Each violation becomes an `HTTPError`.
public struct HTTPLimits: Sendable, Equatable {
    /// Maximum bytes of request line + header fields + final CRLF (leading empty lines
    /// are not counted). Also bounds a chunked body's trailer section. Exceeding it: 431.
    public var maxHeadBytes: Int
    /// Maximum decoded body bytes; `nil` means unlimited. Exceeding it: 413.
    public var maxBodyBytes: Int?
    /// Empty lines (CRLF) tolerated before a request line, e.g. stray CRLFs some clients
    /// send after a POST body (RFC 9112 §2.2 says servers SHOULD ignore at least one).
    public var maxLeadingEmptyLines: Int
    /// Longest request line (method, target, version; CRLF not counted). Exceeding it: 414.
    /// gunicorn's `limit_request_line` default.
    public var maxRequestLineBytes: Int = 4094
    /// Longest field line (name, colon, value; CRLF not counted). Exceeding it: 431.
    /// gunicorn's `limit_request_field_size` default.
    public var maxFieldBytes: Int = 8190
    /// Most field lines in a head. Exceeding it: 431. gunicorn's `limit_request_fields` default.
    public var maxFields: Int = 100
    /// Fields named with `_`: dropped by default.
    public var underscoreFields: UnderscoreFieldPolicy = .drop
    /// Total bytes of chunk extensions (after each size, up to CRLF) in one body. Exceeding it: 400.
    /// Extensions carry nothing swsgi uses; the bound stops a body of tiny chunks with large
    /// extensions from costing far more parsing than its data.
    public var maxChunkExtensionBytes: Int = 16384

    /// Defaults: 8 KiB heads, 1 MiB bodies (nginx's `client_max_body_size` default), 8 empty lines.
    public init(maxHeadBytes: Int = 8192, maxBodyBytes: Int? = 1 << 20, maxLeadingEmptyLines: Int = 8) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxLeadingEmptyLines = maxLeadingEmptyLines
    }
}
