/// Parses the uwsgi wire protocol nginx speaks with `uwsgi_pass` (modifier1 0, WSGI): a 4-byte
/// header (modifier1, little-endian 16-bit size, modifier2), then `size` bytes of variables, each a
/// little-endian 16-bit length and bytes for the name, then the same for the value; the body
/// (CONTENT_LENGTH bytes) follows. One request per connection: the answer is close-delimited.
///
/// The variables become an `HTTPRequestHead` (method, target, `HTTP_*` back into header fields)
/// so the server runs the request as any other; `variables` keeps them all for a WSGI environ.
public struct UwsgiRequestParser: Sendable {
    public let limits: HTTPLimits
    /// The last request's variables, in packet order; values as the bytes sent (a WSGI environ
    /// decodes them as latin-1, byte for byte).
    public private(set) var variables: [(name: String, value: [UInt8])] = []
    private var buffer: [UInt8] = []

    public init(limits: HTTPLimits) { self.limits = limits }

    public mutating func parse(_ bytes: ArraySlice<UInt8>) -> HTTPParseResult {
        let already = buffer.count
        buffer += bytes
        guard buffer.count >= 4 else { return .needMore }
        let size = Int(buffer[1]) | Int(buffer[2]) << 8
        if size > limits.maxHeadBytes { return .error(HTTPError(.headTooLarge)) }
        guard buffer[0] == 0 else {
            return .error(HTTPError(.invalidUwsgiPacket("with modifier1 \(buffer[0]) (swsgi speaks modifier1 0, WSGI)")))
        }
        guard buffer.count >= 4 + size else { return .needMore }
        var vars: [(name: String, value: [UInt8])] = []
        var i = 4
        let end = 4 + size
        func field() -> [UInt8]? {
            guard i + 2 <= end else { return nil }
            let n = Int(buffer[i]) | Int(buffer[i + 1]) << 8
            i += 2
            guard i + n <= end else { return nil }
            defer { i += n }
            return Array(buffer[i..<(i + n)])
        }
        while i < end {
            guard let name = field(), let value = field(), !name.isEmpty else {
                return .error(HTTPError(.invalidUwsgiPacket("whose variables do not fit its size")))
            }
            vars.append((String(decoding: name, as: UTF8.self), value))
        }
        let consumed = end - already
        buffer = []
        variables = vars
        switch head(from: vars) {
        case .success(let head): return .head(head, consumed: consumed)
        case .failure(let e): return .error(e)
        }
    }

    /// The request head the variables describe; a refusal naming the method and target it has, for the log.
    func head(from vars: [(name: String, value: [UInt8])]) -> Result<HTTPRequestHead, HTTPError> {
        var method: String?
        var uri: String?
        var pathInfo = "/"
        var query: String?
        var headers = HTTPHeaders()
        var length: Int?
        var badLength = false
        for (name, raw) in vars {
            // The Swift-side head holds text; the raw bytes stay in `variables` for the environ.
            let value = String(decoding: raw, as: UTF8.self)
            switch name {
            case "REQUEST_METHOD": method = value
            case "REQUEST_URI": uri = value
            case "PATH_INFO": pathInfo = value
            case "QUERY_STRING": query = value.isEmpty ? nil : value
            case "CONTENT_TYPE": if !value.isEmpty { headers.fields.append(Self.field("Content-Type", value, raw)) }
            case "CONTENT_LENGTH":
                guard !value.isEmpty else { break }
                guard let n = Int(value), n >= 0 else { badLength = true; break }
                length = n
                headers.append("Content-Length", value)
            default:
                if name.hasPrefix("HTTP_") && name.count > 5 { headers.fields.append(Self.field(Self.headerName(name.dropFirst(5)), value, raw)) }
            }
        }
        let target = uri ?? (query.map { pathInfo + "?" + $0 } ?? pathInfo)
        guard let method, !method.isEmpty, !method.contains(" ") else {
            return .failure(HTTPError(.invalidUwsgiPacket("without a REQUEST_METHOD"), method: method, target: target))
        }
        if badLength { return .failure(HTTPError(.invalidContentLength, method: method, target: target)) }
        if let maxBody = limits.maxBodyBytes, let length, length > maxBody {
            return .failure(HTTPError(.bodyTooLarge, method: method, target: target))
        }
        var path = pathInfo
        if let uri {
            path = uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
        }
        return .success(HTTPRequestHead(method: method, path: path, query: query, version: .http1_0, headers: headers,
                                        keepAlive: false, expectContinue: false, framing: length.map { .contentLength($0) } ?? .none))
    }

    /// A field from a variable: a value with bytes of 0x80 or above keeps them (`rawValue`), as the HTTP parser's
    /// fields do, so what is made from it (SERVER_NAME from Host) reads the front server's bytes, not the text's
    /// UTF-8 reading of them.
    static func field(_ name: String, _ value: String, _ raw: [UInt8]) -> HTTPField {
        HTTPField(name: name, value: value, rawValue: raw.withUnsafeBufferPointer(hasHighByte) ? raw : nil)
    }

    /// `USER_AGENT` -> `User-Agent`.
    static func headerName(_ cgi: Substring) -> String {
        cgi.split(separator: "_", omittingEmptySubsequences: false)
            .map { $0.prefix(1) + $0.dropFirst().lowercased() }.joined(separator: "-")
    }
}
