/// An HTTP protocol version such as 1.1.
public struct HTTPVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Major version (1 for every request the parser accepts).
    public var major: Int
    /// Minor version (0 or 1; higher minors are accepted and treated as 1).
    public var minor: Int

    /// A version from its two numbers.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0.
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1.
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// Orders by major, then minor.
    public static func < (a: HTTPVersion, b: HTTPVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    /// "HTTP/1.1" style.
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// One header field as received: name case preserved, value with surrounding
/// whitespace removed.
public struct HTTPField: Sendable, Hashable {
    /// Field name as sent (compare with `HTTPHeaders` helpers, which ignore case).
    public var name: String
    /// Field value without leading/trailing spaces and tabs.
    public var value: String
    /// The value's bytes as sent, kept when they are not all ASCII: `value` is their UTF-8 reading
    /// (U+FFFD for bytes that are not UTF-8), while a WSGI environ needs them byte for byte (latin-1).
    public var rawValue: [UInt8]?

    /// A field from its name and value.
    public init(name: String, value: String, rawValue: [UInt8]? = nil) {
        self.name = name
        self.value = value
        self.rawValue = rawValue
    }

    /// The value's bytes as sent.
    public var valueBytes: [UInt8] { rawValue ?? Array(value.utf8) }

    /// Fields compare by name and value: the raw bytes are how they arrived, not what they mean.
    public static func == (a: HTTPField, b: HTTPField) -> Bool { a.name == b.name && a.value == b.value }
    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(value)
    }
}

/// Header fields in wire order, duplicates kept. Lookups ignore ASCII case, as field
/// names are case-insensitive. Linear scans are fine: heads have a few dozen fields.
public struct HTTPHeaders: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    /// The fields in order.
    public var fields: [HTTPField]

    /// Headers holding `fields` in order.
    public init(_ fields: [HTTPField] = []) { self.fields = fields }

    /// Ordered literal; duplicate names are allowed (unlike a Dictionary).
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { HTTPField(name: $0.0, value: $0.1) }
    }

    /// Collection conformance over `fields`.
    public var startIndex: Int { fields.startIndex }
    /// Collection conformance over `fields`.
    public var endIndex: Int { fields.endIndex }
    /// The field at `position` in wire order.
    public subscript(position: Int) -> HTTPField { fields[position] }

    /// Value of the first field named `name` (case-insensitive), or nil.
    public func first(_ name: String) -> String? {
        for f in fields where equalsIgnoringASCIICase(f.name, name) { return f.value }
        return nil
    }

    /// Values of all fields named `name` (case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        fields.compactMap { equalsIgnoringASCIICase($0.name, name) ? $0.value : nil }
    }

    /// Whether a field named `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool { first(name) != nil }

    /// Appends a field at the end.
    public mutating func append(_ name: String, _ value: String) {
        fields.append(HTTPField(name: name, value: value))
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Hashable {
    /// No Content-Length and no Transfer-Encoding: the request has no body.
    case none
    /// Exactly this many bytes follow the head (may be 0).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`: decode with `HTTPBodyDecoder` until the last chunk.
    case chunked
}

/// A parsed request head. Strings are created once per element from the raw bytes;
/// bytes that are not valid UTF-8 (legal obs-text in field values) become U+FFFD.
public struct HTTPRequestHead: Sendable, Hashable {
    /// Method token, case-sensitive as on the wire (e.g. "GET").
    public var method: String
    /// Request-target up to (excluding) the first '?', not percent-decoded. For
    /// absolute-form ("http://h/p") or asterisk-form ("*") targets this is the raw form.
    public var path: String
    /// Everything after the first '?', not decoded; nil when the target has no '?'.
    public var query: String?
    /// Protocol version from the request line (always 1.x; other majors are rejected).
    public var version: HTTPVersion
    /// Header fields in wire order.
    public var headers: HTTPHeaders
    /// Whether the connection may be reused after this request: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no close).
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored on 1.0 per RFC 9110 §10.1.1):
    /// send `HTTPResponseWriter.continueResponse` before reading the body.
    public var expectContinue: Bool
    /// How the body that follows the head is delimited.
    public var framing: HTTPBodyFraming

    /// The raw request-target, reassembled exactly (path + "?" + query).
    public var target: String {
        if let query { return path + "?" + query }
        return path
    }

    /// Whether the method is HEAD (the response must not carry a body).
    public var isHeadMethod: Bool { method == "HEAD" }

    /// Memberwise initializer, for building heads in tests and adapters.
    public init(
        method: String, path: String, query: String? = nil, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = [:], keepAlive: Bool = true, expectContinue: Bool = false,
        framing: HTTPBodyFraming = .none
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.keepAlive = keepAlive
        self.expectContinue = expectContinue
        self.framing = framing
    }
}

extension HTTPRequestHead {
    /// The head as a client or proxy would write it: request line, each field as `Name: value`, and the
    /// empty line. What the parser accepts, written back out with this, parses to an equal head (the
    /// round-trip property the fuzz target and the tests check).
    public var wireBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + headers.count * 32)
        out += method.utf8
        out.append(sp)
        out += target.utf8
        out += " HTTP/\(version.major).\(version.minor)\r\n".utf8
        for f in headers.fields {
            out += f.name.utf8
            out += ": ".utf8
            out += f.value.utf8
            out += "\r\n".utf8
        }
        out += "\r\n".utf8
        return out
    }
}
