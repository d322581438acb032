import CGlibcShim
import Glibc
import HTTP
import PythonRuntime
import SWSGI

/// Builds each request's PEP 3333 environ: a copy of the worker's constant part (wsgi.*), plus the
/// CGI variables. Keys are made once; values that repeat from request to request (method, protocol,
/// host, peer) come from small caches, so a typical request makes only its path, target and header
/// values as new Python strings.
///
/// The copy is of a template (`base`) that also holds what usually repeats (`Repeating`): the last request's
/// value, which a request with the very same value object (the caches give one object per text) leaves as it
/// is. Setting a key costs CPython about 190 instructions, and a keep-alive client's requests repeat six of them.
final class EnvironBuilder {
    let api: CPythonAPI
    let base: PyObjectPointer
    /// The keys whose values usually repeat: one client's keep-alive connection, one server name.
    private enum Repeating: Int, CaseIterable {
        case method, pathInfo, requestURI, protocolVersion, serverName, serverPort, remoteAddress, host
    }
    /// By `Repeating`: its key, and the value the template holds (nil: the key is not in the template). The
    /// template keeps a reference to that object, so no other object can have its address meanwhile.
    private let repeatingKeys: UnsafeMutablePointer<PyObjectPointer>
    private let templateHolds: UnsafeMutablePointer<PyObjectPointer?>
    private let keyMethod, keyPathInfo, keyQuery, keyURI, keyProtocol, keyServerName, keyServerPort,
                keyRemoteAddr, keyRemotePort, keyContentType, keyContentLength, keyHTTPHost, keyURLScheme: PyObjectPointer
    private let empty, https, commaSpace, semicolonSpace: PyObjectPointer
    private let methods = PyStringCache<String>(capacity: 8)
    private let protocols = PyStringCache<HTTPVersion>(capacity: 4)
    /// By Host field: HTTP_HOST, SERVER_NAME, and SERVER_PORT (None when the field names no port).
    private let hostValues = PyStringCache<String>(capacity: 8)
    private let hostNames = PyStringCache<String>(capacity: 8)
    private let hostPorts = PyStringCache<String>(capacity: 8)
    private let localNames = PyStringCache<String>(capacity: 4)
    private let ports = PyStringCache<Int>(capacity: 64)
    private let remoteAddresses = PyStringCache<String>(capacity: 16)
    /// Header names to their `HTTP_*` keys, and uwsgi variable names to theirs; bounded so hostile
    /// clients cannot grow them.
    private let headerKeys = PyStringCache<String>(capacity: 64)
    private let variableKeys = PyStringCache<String>(capacity: 64)

    init(api: CPythonAPI, constants: [(String, PyObjectPointer)]) throws {
        self.api = api
        func string(_ s: String) throws -> PyObjectPointer {
            guard let o = pyString(api, s) else { throw SWSGIError("cannot create the WSGI environ") }
            return o
        }
        guard let d = api.PyDict_New() else { throw SWSGIError("cannot create the WSGI environ") }
        base = d
        for (k, v) in constants {
            let key = try string(k)
            defer { api.Py_DecRef(key) }
            guard api.PyDict_SetItem(d, key, v) == 0 else { throw SWSGIError("cannot create the WSGI environ") }
        }
        keyMethod = try string("REQUEST_METHOD")
        keyPathInfo = try string("PATH_INFO")
        keyQuery = try string("QUERY_STRING")
        keyURI = try string("REQUEST_URI")
        keyProtocol = try string("SERVER_PROTOCOL")
        keyServerName = try string("SERVER_NAME")
        keyServerPort = try string("SERVER_PORT")
        keyRemoteAddr = try string("REMOTE_ADDR")
        keyRemotePort = try string("REMOTE_PORT")
        keyContentType = try string("CONTENT_TYPE")
        keyContentLength = try string("CONTENT_LENGTH")
        keyHTTPHost = try string("HTTP_HOST")
        keyURLScheme = try string("wsgi.url_scheme")
        empty = try string("")
        https = try string("https")
        commaSpace = try string(", ")
        semicolonSpace = try string("; ")
        // QUERY_STRING holds its usual value in the template, set only for a target with a query.
        guard api.PyDict_SetItem(d, keyQuery, empty) == 0 else { throw SWSGIError("cannot create the WSGI environ") }
        let count = Repeating.allCases.count
        repeatingKeys = .allocate(capacity: count)
        templateHolds = .allocate(capacity: count)
        templateHolds.initialize(repeating: nil, count: count)
        for slot in Repeating.allCases {
            let key: PyObjectPointer
            switch slot {
            case .method: key = keyMethod
            case .pathInfo: key = keyPathInfo
            case .requestURI: key = keyURI
            case .protocolVersion: key = keyProtocol
            case .serverName: key = keyServerName
            case .serverPort: key = keyServerPort
            case .remoteAddress: key = keyRemoteAddr
            case .host: key = keyHTTPHost
            }
            (repeatingKeys + slot.rawValue).initialize(to: key)
        }
    }

    /// `env[key] = value` for a key of `Repeating` (a borrowed value): nothing when the template holds that
    /// very object, else in the copy and the template both. False with a Python error pending.
    private func putRepeating(_ env: PyObjectPointer, _ slot: Repeating, _ value: PyObjectPointer?) -> Bool {
        guard let value else { return false }
        let i = slot.rawValue
        if templateHolds[i] == value { return true }
        let key = repeatingKeys[i]
        guard api.PyDict_SetItem(env, key, value) == 0, api.PyDict_SetItem(base, key, value) == 0 else { return false }
        templateHolds[i] = value
        return true
    }

    /// A request without the key of `slot`: it goes from the copy, and from the template (so the next
    /// request without it has nothing to remove). False with a Python error pending.
    private func removeRepeating(_ env: PyObjectPointer, _ slot: Repeating) -> Bool {
        let i = slot.rawValue
        guard templateHolds[i] != nil else { return true }
        let key = repeatingKeys[i]
        guard api.PyDict_DelItem(env, key) == 0, api.PyDict_DelItem(base, key) == 0 else { return false }
        templateHolds[i] = nil
        return true
    }

    /// Sets a constant of every later request's environ (a new set of request objects).
    func setConstant(_ key: String, _ value: PyObjectPointer) {
        guard let k = pyString(api, key) else { return }
        _ = api.PyDict_SetItem(base, k, value)
        api.Py_DecRef(k)
    }

    /// `env[key] = value`; false with a Python error pending.
    private func put(_ env: PyObjectPointer, _ key: PyObjectPointer, _ value: PyObjectPointer?) -> Bool {
        guard let value else { return false }
        return api.PyDict_SetItem(env, key, value) == 0
    }

    /// `env[key] = value` with a new value: the text's UTF-8 bytes read as latin-1 (a native string).
    private func put(_ env: PyObjectPointer, _ key: PyObjectPointer, text: String) -> Bool {
        var text = text
        return put(env, key, owned: text.withUTF8 { latin1($0) })
    }

    private func put(_ env: PyObjectPointer, _ key: PyObjectPointer, owned value: PyObjectPointer?) -> Bool {
        guard let value else { return false }
        defer { api.Py_DecRef(value) }
        return api.PyDict_SetItem(env, key, value) == 0
    }

    private func latin1(_ bytes: UnsafeBufferPointer<UInt8>) -> PyObjectPointer? {
        pyLatin1(api, UnsafeRawBufferPointer(bytes))
    }

    private func cachedText(_ cache: PyStringCache<String>, _ text: String) -> PyObjectPointer? {
        cache.object(text, decRef: api.Py_DecRef) { t in
            var t = t
            return t.withUTF8 { latin1($0) }
        }
    }

    /// PATH_INFO for a request path, whether it is the path's own text (nothing decoded, no scheme and authority
    /// dropped), and whether the caller owns the reference (else it is the cache's: valid until the next miss).
    /// A server's paths repeat (its routes, health checks): the short ones come from a cache, so a repeated path
    /// makes no new string and usually sets nothing (`putRepeating`). nil with a Python error pending.
    private func pathInfo(_ path: String) -> (object: PyObjectPointer, asSent: Bool, owned: Bool)? {
        let hit: (PyObjectPointer, Bool, Bool)? = pathInfos.lookup { buf in
            for i in buf.indices where buf[i].path.isExactly(path) { return (buf[i].object, buf[i].asSent, false) }
            return nil
        }
        if let hit { return hit }
        var asSent = false
        guard let o = withPathInfo(path, { bytes, same in
            asSent = same
            return latin1(bytes)
        }) else { return nil }
        guard path.utf8.count <= Self.cachedPathBytes else { return (o, asSent, true) }
        if let evicted = pathInfos.insert((path, o, asSent)) { api.Py_DecRef(evicted.object) }
        return (o, asSent, false)
    }

    /// Paths up to this long are cached (`pathInfos`): the cache holds at most 16 of them.
    private static let cachedPathBytes = 96
    private let pathInfos = RingCache<(path: String, object: PyObjectPointer, asSent: Bool)>(capacity: 16)

    /// A new environ for `r`; nil with a Python error pending.
    func environ(for r: Request) -> PyObjectPointer? {
        guard let env = api.PyDict_Copy(base) else { return nil }
        if fill(env, r) { return env }
        api.Py_DecRef(env)
        return nil
    }

    private func fill(_ env: PyObjectPointer, _ r: Request) -> Bool {
        // A target with no query whose path needs no decoding (the usual `/` or `/items/7`): REQUEST_URI is the
        // same text as PATH_INFO, and gets the same (immutable) str.
        guard let (pathInfo, asSent, owned) = pathInfo(r.path) else { return false }
        defer { if owned { api.Py_DecRef(pathInfo) } }
        let uriIsPathInfo = asSent && r.query == nil
        // (A REQUEST_URI with a query is this request's own: set in its copy only, the template keeps its value.)
        guard putRepeating(env, .method, cachedText(methods, r.method)),
              putRepeating(env, .pathInfo, pathInfo),
              r.query.map({ put(env, keyQuery, text: $0) }) ?? true,
              uriIsPathInfo ? putRepeating(env, .requestURI, pathInfo) : put(env, keyURI, text: r.target),
              putRepeating(env, .protocolVersion, protocols.object(r.version, decRef: api.Py_DecRef, make: { v in pyString(api, v.description) }))
        else { return false }
        var hostField: String?
        var hostRaw: [UInt8]?
        guard addHeaders(env, r.headers, host: &hostField, raw: &hostRaw) else { return false }
        // No Host field (HTTP/1.0).
        if hostField == nil && !removeRepeating(env, .host) { return false }
        let host = hostField ?? ""
        let fromFront = r.cgiVariables != nil
        // The connection's own address, asked for only when the Host lacks what it gives (most requests' Host
        // has a port).
        func local() -> (host: String, port: Int)? { fromFront ? nil : r.localAddress }
        let serverName: PyObjectPointer?
        var serverPort: PyObjectPointer?
        var madeHere: (PyObjectPointer?, PyObjectPointer?) = (nil, nil)
        defer {
            if let o = madeHere.0 { api.Py_DecRef(o) }
            if let o = madeHere.1 { api.Py_DecRef(o) }
        }
        if let hostRaw {
            // A front server's Host in bytes of 0x80 and above: both read from those bytes as latin-1, as HTTP_HOST is.
            var name: PyObjectPointer?, port: PyObjectPointer?, hasPort = false
            hostRaw.withUnsafeBufferPointer { b in
                let (n, p) = splitHost(b)
                name = latin1(UnsafeBufferPointer(rebasing: b[n]))
                if let p { hasPort = true; port = latin1(UnsafeBufferPointer(rebasing: b[p])) }
            }
            // New references (the others are the caches'): the template keeps its own once they are set.
            madeHere = (name, port)
            serverName = name
            serverPort = hasPort ? port : api.none
        } else if !host.isEmpty {
            // Both come from the Host text; a port it lacks is the connection's (below): None here.
            serverName = hostNames.object(host, decRef: api.Py_DecRef) { h in
                var name = splitHost(h).name
                return name.withUTF8 { latin1($0) }
            }
            serverPort = hostPorts.object(host, decRef: api.Py_DecRef) { h in
                guard let port = splitHost(h).port else { api.Py_IncRef(api.none); return api.none }
                return pyString(api, port)
            }
        } else {
            serverName = cachedText(localNames, local()?.host ?? "localhost")
            serverPort = api.none
        }
        if serverPort == api.none {
            serverPort = ports.object(local()?.port ?? 80, decRef: api.Py_DecRef) { pyString(api, String($0)) }
        }
        guard putRepeating(env, .serverName, serverName), putRepeating(env, .serverPort, serverPort) else { return false }
        if !fromFront, let peer = r.peerAddress {
            guard putRepeating(env, .remoteAddress, cachedText(remoteAddresses, peer.host)),
                  put(env, keyRemotePort, ports.object(peer.port, decRef: api.Py_DecRef, make: { pyString(api, String($0)) }))
            else { return false }
        } else if !removeRepeating(env, .remoteAddress) {
            // (A Unix socket has no peer address; behind the uwsgi protocol the front server's variables say it.)
            return false
        }
        // uwsgi protocol: the front server's variables (uwsgi_params) are the environ, as under uWSGI.
        if let vars = r.cgiVariables {
            var isHTTPS = false
            for (name, value) in vars where !name.hasPrefix("wsgi.") {
                // Byte for byte as latin-1 (PEP 3333): nginx sends PATH_INFO decoded, in whatever bytes the client used.
                guard let key = variableKeys.object(name, decRef: api.Py_DecRef, make: { pyString(api, $0) }),
                      put(env, key, owned: value.withUnsafeBufferPointer { latin1($0) }) else { return false }
                if (name == "HTTPS" && (value == Array("on".utf8) || value == [UInt8(ascii: "1")]))
                    || (name == "REQUEST_SCHEME" && value == Array("https".utf8)) { isHTTPS = true }
            }
            if isHTTPS && !put(env, keyURLScheme, https) { return false }
        }
        return true
    }

    /// The request's fields as `HTTP_*` (and CONTENT_TYPE/CONTENT_LENGTH). Duplicate fields are joined
    /// with ", " (cookies with "; "), as CGI and PEP 3333 expect. A name with "_" is dropped: it would
    /// collide with the "-" spelling (header spoofing). Values go byte for byte (latin-1 native
    /// strings), whatever their encoding. `host`: the first Host field's value (nil: none).
    private func addHeaders(_ env: PyObjectPointer, _ headers: HTTPHeaders, host: inout String?, raw hostRaw: inout [UInt8]?) -> Bool {
        let fields = headers.fields
        for (index, f) in fields.enumerated() where !hasUnderscore(f.name) {
            let key: PyObjectPointer
            let length = f.name.utf8.count
            // Compared with the usual spelling: the parser gives that one as the very literal, which matches
            // without a byte compare (`equalsIgnoringASCIICase` checks the representation first).
            let isHost = length == 4 && equalsIgnoringASCIICase(f.name, "Host")
            // (The template may hold an earlier request's HTTP_HOST: the first Host field is never joined to it.)
            let firstHost = isHost && host == nil
            if firstHost {
                host = f.value
                hostRaw = f.rawValue
                // The parser has checked the Host syntax (ASCII); a value in other bytes (from a front server's
                // variables) is set below like any field.
                if f.rawValue == nil {
                    guard putRepeating(env, .host, cachedText(hostValues, f.value)) else { return false }
                    continue
                }
            }
            if isHost {
                key = keyHTTPHost
            } else if length == 12 && equalsIgnoringASCIICase(f.name, "Content-Type") {
                key = keyContentType
            } else if length == 14 && equalsIgnoringASCIICase(f.name, "Content-Length") {
                key = keyContentLength
            } else {
                guard let k = headerKeys.object(f.name, decRef: api.Py_DecRef, make: { name in
                    var text = "HTTP_"
                    text.unicodeScalars.append(contentsOf: name.uppercased().unicodeScalars.map { $0 == "-" ? "_" : $0 })
                    return pyString(api, text)
                }) else { return false }
                key = k
            }
            let value: PyObjectPointer?
            if let raw = f.rawValue {
                value = raw.withUnsafeBufferPointer { latin1($0) }
            } else {
                var text = f.value
                value = text.withUTF8 { latin1($0) }
            }
            guard let value else { return false }
            defer { api.Py_DecRef(value) }
            // A repeated field (names compare without case, as their keys): append to the value so far. (Only a
            // name seen before in this head can repeat: the environ's other keys are not HTTP_* or CONTENT_*. The
            // names are compared here, so most fields skip the dictionary lookup.)
            if !firstHost, mayRepeatName(fields, before: index), let previous = api.PyDict_GetItem(env, key) {
                let separator = equalsIgnoringASCIICase(f.name, "cookie") ? semicolonSpace : commaSpace
                guard let head = api.PyUnicode_Concat(previous, separator) else { return false }
                let joined = api.PyUnicode_Concat(head, value)
                api.Py_DecRef(head)
                guard put(env, key, owned: joined) else { return false }
            } else if api.PyDict_SetItem(env, key, value) != 0 {
                return false
            }
        }
        return true
    }
}

/// Whether a field before `index` may have the name of the field at `index` (ASCII case ignored): the same
/// environ key. The names are compared only within the head's first `repeatScanFields` fields; a later field
/// asks the dictionary (true), so a head costs at most that many comparisons per field, never one per pair of
/// fields (12,000 fields, which --limit-request-fields may allow, held a worker for half a minute).
@inline(__always)
private func mayRepeatName(_ fields: [HTTPField], before index: Int) -> Bool {
    guard index < repeatScanFields else { return true }
    let name = fields[index].name
    let length = name.utf8.count
    for k in 0..<index where fields[k].name.utf8.count == length && equalsIgnoringASCIICase(fields[k].name, name) { return true }
    return false
}

/// Usual heads have 5 to 20 fields (browsers, nginx): all of them take the comparisons instead of the lookup.
private let repeatScanFields = 32

/// Whether a field name holds "_" (memchr on its bytes: the generic `utf8.contains` walks the view byte by
/// byte through its iterator, per field of every request).
@inline(__always)
private func hasUnderscore(_ name: String) -> Bool {
    var name = name
    return name.withUTF8 { b in !b.isEmpty && memchr(b.baseAddress!, Int32(UInt8(ascii: "_")), b.count) != nil }
}

/// Python strings for values that repeat from request to request, made once (a `RingCache`). The
/// object it returns is borrowed: valid until the next miss. (Classes held in `let`s all the way down:
/// a lookup is then no access for the exclusivity checks to track.)
final class PyStringCache<Key: ExactKey> {
    private let ring: RingCache<(key: Key, object: PyObjectPointer)>

    init(capacity: Int) { ring = RingCache(capacity: capacity) }

    /// nil with a Python error pending (from `make`).
    func object(_ key: Key, decRef: py_void_obj, make: (Key) -> PyObjectPointer?) -> PyObjectPointer? {
        let hit: PyObjectPointer? = ring.lookup { buf in
            for i in buf.indices where buf[i].key.isExactly(key) { return buf[i].object }
            return nil
        }
        if let hit { return hit }
        guard let o = make(key) else { return nil }
        if let evicted = ring.insert((key, o)) { decRef(evicted.object) }
        return o
    }
}

/// A cache key compared exactly. Text compares byte for byte: String's `==` holds canonically
/// equivalent text equal ("café" with U+00E9 and with U+0301), and the Python string made from one
/// spelling must not stand for the other.
protocol ExactKey {
    func isExactly(_ other: Self) -> Bool
}

extension String: ExactKey {
    func isExactly(_ other: String) -> Bool {
        // Most lookups hit this way: the key is the very string (a small one's bytes, or the same storage).
        if sameRepresentation(self, other) { return true }
        guard utf8.count == other.utf8.count else { return false }
        var a = self, b = other
        return a.withUTF8 { pa in
            b.withUTF8 { pb in pa.count == pb.count && (pa.isEmpty || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0) }
        }
    }
}

extension Int: ExactKey {
    func isExactly(_ other: Int) -> Bool { self == other }
}

extension HTTPVersion: ExactKey {
    func isExactly(_ other: HTTPVersion) -> Bool { self == other }
}

/// Calls `body` with PATH_INFO: the request path percent-decoded to bytes; absolute-form targets
/// lose their scheme and authority. Most paths have neither, and go through as they are (`body`'s second
/// argument says so: the bytes are the path's own).
func withPathInfo<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>, _ asSent: Bool) -> T) -> T {
    var path = path
    return path.withUTF8 { raw in
        var start = 0
        if let first = raw.first, first | 0x20 == UInt8(ascii: "h") {
            for scheme in ["http://", "https://"] where raw.count >= scheme.utf8.count
                && zip(raw, scheme.utf8).allSatisfy({ $0 | 0x20 == $1 }) {
                let rest = raw[scheme.utf8.count...]
                guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else {
                    return [UInt8(ascii: "/")].withUnsafeBufferPointer { body($0, false) }
                }
                start = slash
            }
        }
        let part = UnsafeBufferPointer(rebasing: raw[start...])
        guard part.contains(UInt8(ascii: "%")) else { return body(part, start == 0) }
        let out = PercentDecoding.decode(part) ?? Array(part)
        return out.withUnsafeBufferPointer { body($0, false) }
    }
}

/// `example.com:8080` -> (example.com, 8080); `[::1]:80` -> (::1, 80); no port -> nil. (Bytes, not
/// Characters: the parser has checked the Host syntax, and grapheme walking is slow.)
func splitHost(_ host: String) -> (name: String, port: String?) {
    var host = host
    return host.withUTF8 { b in
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self) }
        let (name, port) = splitHost(b)
        return (text(name), port.map(text))
    }
}

/// Where the name and the port (if any) are in a Host's bytes: `[v6]:port`, `name:port` (the last colon), `name`.
func splitHost(_ b: UnsafeBufferPointer<UInt8>) -> (name: Range<Int>, port: Range<Int>?) {
    if b.first == UInt8(ascii: "["), let close = b.firstIndex(of: UInt8(ascii: "]")) {
        let portStart = close + 2
        let hasPort = close + 1 < b.count && b[close + 1] == UInt8(ascii: ":") && portStart < b.count
        return (1..<close, hasPort ? portStart..<b.count : nil)
    }
    if let colon = b.lastIndex(of: UInt8(ascii: ":")) {
        return (0..<colon, colon + 1 < b.count ? colon + 1..<b.count : nil)
    }
    return (0..<b.count, nil)
}
