import HTTP
import PythonRuntime
import SWSGI

/// Builds each request's PEP 3333 environ: a copy of the worker's constant part (wsgi.*), plus the
/// CGI variables. Key strings are made once and reused.
final class EnvironBuilder {
    let api: CPythonAPI
    let base: PyObjectPointer
    private var keys: [String: PyObjectPointer] = [:]
    /// Header names seen, to their `HTTP_*` keys; bounded so hostile clients cannot grow it.
    private var headerKeys: [String: PyObjectPointer] = [:]
    static let headerKeyCacheLimit = 256

    init(api: CPythonAPI, constants: [(String, PyObjectPointer)]) throws {
        self.api = api
        guard let d = api.PyDict_New() else { throw SWSGIError("cannot create the WSGI environ") }
        base = d
        for (k, v) in constants {
            guard let key = pyString(api, k), api.PyDict_SetItem(d, key, v) == 0 else { throw SWSGIError("cannot create the WSGI environ") }
            api.Py_DecRef(key)
        }
    }

    private func key(_ name: String) -> PyObjectPointer? {
        if let k = keys[name] { return k }
        guard let k = pyString(api, name) else { return nil }
        keys[name] = k
        return k
    }

    /// `environ[name] = value` with value a native (latin-1) string of its UTF-8 bytes; false on error.
    @discardableResult
    private func set(_ env: PyObjectPointer, _ name: String, _ value: String) -> Bool {
        guard let k = key(name) else { return false }
        return setValue(env, k, value)
    }

    private func setValue(_ env: PyObjectPointer, _ k: PyObjectPointer, _ value: String) -> Bool {
        var value = value
        guard let v = value.withUTF8({ pyLatin1(api, UnsafeRawBufferPointer($0)) }) else { return false }
        defer { api.Py_DecRef(v) }
        return api.PyDict_SetItem(env, k, v) == 0
    }

    private func setRawValue(_ env: PyObjectPointer, _ k: PyObjectPointer, _ bytes: [UInt8]) -> Bool {
        guard let v = bytes.withUnsafeBytes({ pyLatin1(api, $0) }) else { return false }
        defer { api.Py_DecRef(v) }
        return api.PyDict_SetItem(env, k, v) == 0
    }

    private func setBytesValue(_ env: PyObjectPointer, _ name: String, _ bytes: [UInt8]) -> Bool {
        guard let k = key(name), let v = bytes.withUnsafeBytes({ pyLatin1(api, $0) }) else { return false }
        defer { api.Py_DecRef(v) }
        return api.PyDict_SetItem(env, k, v) == 0
    }

    private func headerKey(_ name: String) -> (PyObjectPointer, owned: Bool)? {
        if let k = headerKeys[name] { return (k, false) }
        var text = "HTTP_"
        text.unicodeScalars.append(contentsOf: name.unicodeScalars.map { $0 == "-" ? "_" : $0 })
        guard let k = pyString(api, text) else { return nil }
        if headerKeys.count < Self.headerKeyCacheLimit {
            headerKeys[name] = k
            return (k, false)
        }
        return (k, true)
    }

    /// A new environ for `r`; nil with a Python error pending.
    func environ(for r: Request) -> PyObjectPointer? {
        guard let env = api.PyDict_Copy(base) else { return nil }
        var ok = set(env, "REQUEST_METHOD", r.method)
        ok = ok && setBytesValue(env, "PATH_INFO", pathInfo(r.path))
        ok = ok && set(env, "QUERY_STRING", r.query ?? "")
        ok = ok && set(env, "REQUEST_URI", r.target)
        ok = ok && set(env, "SERVER_PROTOCOL", r.version.description)
        let fromFront = r.cgiVariables != nil
        let local = fromFront ? nil : r.localAddress
        var serverName = local?.host ?? "localhost"
        var serverPort = local.map { String($0.port) } ?? "80"
        if let host = r.header("Host"), !host.isEmpty {
            (serverName, serverPort) = splitHost(host, defaultPort: serverPort)
        }
        ok = ok && set(env, "SERVER_NAME", serverName)
        ok = ok && set(env, "SERVER_PORT", serverPort)
        if !fromFront, let peer = r.peerAddress {
            ok = ok && set(env, "REMOTE_ADDR", peer.host)
            ok = ok && set(env, "REMOTE_PORT", String(peer.port))
        }
        // Duplicate fields are joined with ", " (cookies with "; "), as CGI and PEP 3333 expect.
        // A name with "_" is dropped: it would collide with the "-" spelling (header spoofing).
        // Values go byte for byte (latin-1 native strings), whatever their encoding.
        var seen: [String: [UInt8]] = [:]
        var order: [String] = []
        for f in r.headers.fields where !f.name.utf8.contains(UInt8(ascii: "_")) {
            let lower = f.name.lowercased()
            if let previous = seen[lower] {
                seen[lower] = previous + Array((lower == "cookie" ? "; " : ", ").utf8) + f.valueBytes
            } else {
                seen[lower] = f.valueBytes
                order.append(lower)
            }
        }
        for name in order where ok {
            let value = seen[name]!
            switch name {
            case "content-type": ok = setBytesValue(env, "CONTENT_TYPE", value)
            case "content-length": ok = setBytesValue(env, "CONTENT_LENGTH", value)
            default:
                guard let (k, owned) = headerKey(name.uppercased()) else { ok = false; break }
                ok = setRawValue(env, k, value)
                if owned { api.Py_DecRef(k) }
            }
        }
        // uwsgi protocol: the front server's variables (uwsgi_params) are the environ, as under uWSGI.
        if ok, let vars = r.cgiVariables {
            var https = false
            for (name, value) in vars where !name.hasPrefix("wsgi.") && ok {
                // Byte for byte as latin-1 (PEP 3333): nginx sends PATH_INFO decoded, in whatever bytes the client used.
                ok = setBytesValue(env, name, value)
                if (name == "HTTPS" && (value == Array("on".utf8) || value == [UInt8(ascii: "1")]))
                    || (name == "REQUEST_SCHEME" && value == Array("https".utf8)) { https = true }
            }
            if https { ok = ok && set(env, "wsgi.url_scheme", "https") }
        }
        if !ok {
            api.Py_DecRef(env)
            return nil
        }
        return env
    }
}

/// The request path percent-decoded to bytes (PATH_INFO); absolute-form targets lose their
/// scheme and authority.
func pathInfo(_ path: String) -> [UInt8] {
    var raw = Array(path.utf8)
    for scheme in ["http://", "https://"] where path.lowercased().hasPrefix(scheme) {
        let rest = raw[scheme.utf8.count...]
        raw = rest.firstIndex(of: UInt8(ascii: "/")).map { Array(raw[$0...]) } ?? [UInt8(ascii: "/")]
    }
    var out: [UInt8] = []
    out.reserveCapacity(raw.count)
    var i = 0
    while i < raw.count {
        if raw[i] == UInt8(ascii: "%"), i + 2 < raw.count, let h = hexValue(raw[i + 1]), let l = hexValue(raw[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(raw[i])
            i += 1
        }
    }
    return out
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// `example.com:8080` -> (example.com, 8080); `[::1]:80` -> (::1, 80); no port -> the default.
func splitHost(_ host: String, defaultPort: String) -> (String, String) {
    if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
        let name = String(host[host.index(after: host.startIndex)..<close])
        let rest = host[host.index(after: close)...]
        return (name, rest.hasPrefix(":") && rest.count > 1 ? String(rest.dropFirst()) : defaultPort)
    }
    if let colon = host.lastIndex(of: ":") {
        let port = host[host.index(after: colon)...]
        return (String(host[..<colon]), port.isEmpty ? defaultPort : String(port))
    }
    return (host, defaultPort)
}
