import Common
import Glibc
import HTTP
import Posix
import SWSGIConfig

/// What one request's log line may show; built once per logged request, read by the compiled format.
struct RequestFacts {
    var method: String
    /// REQUEST_URI: the target as sent.
    var uri: String
    var status: Int
    /// Response body bytes sent.
    var bodyBytes: Int
    /// Response head bytes and header count (0 where the head was not ours to count).
    var headerBytes = 0
    var headerCount = 0
    /// Monotonic nanoseconds at the start and the end of the request.
    var started: UInt64
    var ended: UInt64
    var head: HTTPRequestHead? = nil
    /// The uwsgi protocol's variables (nginx's uwsgi_params), nil for HTTP.
    var cgi: [(name: String, value: [UInt8])]? = nil
    var peer: SocketAddresses? = nil
    var note: String? = nil
    var viaSendfile = false
    var readErrors = 0
    var writeErrors = 0
    /// The request thread's number (uWSGI's core), 0 without threads.
    var core = 0

    var durationMicros: UInt64 { ended > started ? (ended - started) / 1000 : 0 }

    /// A CGI variable as uWSGI's `%(var.NAME)` sees it: the uwsgi packet's, or made from the HTTP head.
    func variable(_ name: String) -> String? {
        if let cgi {
            return cgi.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
        }
        switch name {
        case "REQUEST_METHOD": return method
        case "REQUEST_URI": return uri
        case "PATH_INFO": return head.map { percentDecoded($0.path) }
        case "QUERY_STRING": return head.map { $0.query ?? "" }
        case "SERVER_PROTOCOL": return head.map { "HTTP/\($0.version.major).\($0.version.minor)" }
        case "REMOTE_ADDR": return peer?.peer?.host
        case "REMOTE_PORT": return peer?.peer.map { String($0.port) }
        case "SERVER_NAME": return head?.headers.first("Host").map { String($0.split(separator: ":").first ?? "") }
        case "SERVER_PORT": return peer?.local.map { String($0.port) }
        case "CONTENT_LENGTH": return head?.headers.first("Content-Length")
        case "CONTENT_TYPE": return head?.headers.first("Content-Type")
        default:
            guard name.hasPrefix("HTTP_"), let head else { return nil }
            let header = name.dropFirst(5).map { $0 == "_" ? "-" : $0 }
            let wanted = String(header).lowercased()
            let values = head.headers.fields.filter { $0.name.lowercased() == wanted }.map(\.value)
            return values.isEmpty ? nil : values.joined(separator: ", ")
        }
    }
}

/// `--log-format`: uWSGI's request line template, compiled once into parts (core/logging.c's logchunks).
/// Each part is filled per request; an empty value prints as `-`, as uWSGI's does.
struct RequestLogFormat {
    enum Field {
        case uri, method, user, addr, host, proto, uagent, referer, status, rsize, hsize, size, cl
        case micros, msecs, secs, tmsecs, tmicros, time, ltime, ftime, ctime, epoch, pid, wid
        case switches, vars, core, vsz, rss, vszM, rssM, pktsize, modifier1, modifier2, headers, werr, rerr, ioerr, note
    }

    enum Part {
        case literal(String)
        case field(Field)
        /// `%(json_uri)`: the field JSON-escaped (the escape_json plugin's chunks).
        case json(Field)
        /// `%(var.NAME)`: a request (CGI) variable.
        case variable(String)
    }

    let parts: [Part]
    /// A template that starts with `{` is taken as JSON: every value is JSON-escaped, so a hostile URI
    /// cannot break the line's syntax (uWSGI writes values raw; its users add the escape_json plugin).
    let json: Bool
    let workerID: Int
    let pid = getpid()
    let xForwardedFor: Bool
    /// `%(ftime)`'s strftime format (`--logformat-strftime` with a `--log-date` format), else ltime's.
    let ftimeFormat: String

    private static let fields: [String: Field] = [
        "uri": .uri, "method": .method, "user": .user, "addr": .addr, "host": .host, "proto": .proto,
        "uagent": .uagent, "referer": .referer, "status": .status, "rsize": .rsize, "hsize": .hsize, "size": .size,
        "cl": .cl, "micros": .micros, "msecs": .msecs, "secs": .secs, "tmsecs": .tmsecs, "tmicros": .tmicros,
        "time": .time, "ltime": .ltime, "ftime": .ftime, "ctime": .ctime, "epoch": .epoch, "pid": .pid, "wid": .wid,
        "switches": .switches, "vars": .vars, "core": .core, "vsz": .vsz, "rss": .rss, "vszM": .vszM, "rssM": .rssM,
        "pktsize": .pktsize, "modifier1": .modifier1, "modifier2": .modifier2, "headers": .headers,
        "werr": .werr, "rerr": .rerr, "ioerr": .ioerr, "note": .note,
    ]

    static let apacheTime = "%d/%b/%Y:%H:%M:%S %z"

    init(_ template: String, workerID: Int, logging: LoggingOptions) {
        parts = LogTemplate.parsed(template, syntax: .percent).map { p -> Part in
            switch p {
            case .literal(let s): return .literal(s)
            case .variable(let name):
                if let f = Self.fields[name] { return .field(f) }
                if name.hasPrefix("json_"), let f = Self.fields[String(name.dropFirst(5))] { return .json(f) }
                if name.hasPrefix("var.") { return .variable(String(name.dropFirst(4))) }
                return .literal("-")
            }
        }
        json = template.hasPrefix("{")
        self.workerID = workerID
        xForwardedFor = logging.xForwardedFor
        if logging.formatStrftime, case .strftime(let f)? = logging.date { ftimeFormat = f } else { ftimeFormat = Self.apacheTime }
    }

    func line(_ r: RequestFacts) -> String {
        var out = ""
        for part in parts {
            let value: String
            switch part {
            case .literal(let s): out += s; continue
            case .field(let f): value = json ? jsonEscaped(self.value(f, r)) : self.value(f, r)
            case .json(let f): value = jsonEscaped(self.value(f, r))
            case .variable(let name): value = json ? jsonEscaped(r.variable(name) ?? "") : r.variable(name) ?? ""
            }
            out += value.isEmpty ? "-" : value
        }
        return out
    }

    /// The client address as `%(addr)` shows it (X-Forwarded-For's value with `--log-x-forwarded-for`).
    static func address(_ r: RequestFacts, xForwardedFor: Bool) -> String {
        if xForwardedFor, let xff = r.variable("HTTP_X_FORWARDED_FOR") { return xff }
        if let cgi = r.cgi { return cgi.first { $0.name == "REMOTE_ADDR" }.map { String(decoding: $0.value, as: UTF8.self) } ?? "" }
        return r.peer?.peer?.host ?? ""
    }

    private func value(_ f: Field, _ r: RequestFacts) -> String {
        switch f {
        case .uri: return r.uri
        case .method: return r.method
        case .user: return r.variable("REMOTE_USER") ?? ""
        case .addr: return Self.address(r, xForwardedFor: xForwardedFor)
        case .host: return r.head?.headers.first("Host") ?? r.variable("HTTP_HOST") ?? ""
        case .proto: return r.head.map { "HTTP/\($0.version.major).\($0.version.minor)" } ?? r.variable("SERVER_PROTOCOL") ?? ""
        case .uagent: return r.head?.headers.first("User-Agent") ?? r.variable("HTTP_USER_AGENT") ?? ""
        case .referer: return r.head?.headers.first("Referer") ?? r.variable("HTTP_REFERER") ?? ""
        case .status: return String(r.status)
        case .rsize: return String(r.bodyBytes)
        case .hsize: return String(r.headerBytes)
        case .size: return String(r.headerBytes + r.bodyBytes)
        case .cl: return String(Int(r.variable("CONTENT_LENGTH") ?? "") ?? 0)
        case .micros: return String(r.durationMicros)
        case .msecs: return String(r.durationMicros / 1000)
        case .secs:
            // uwsgi_float2str: printf's %f.
            let us = r.durationMicros
            let frac = String(us % 1_000_000)
            return "\(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
        case .tmsecs: return String(startMicros(r) / 1000)
        case .tmicros: return String(startMicros(r))
        case .time: return String(startMicros(r) / 1_000_000)
        case .ltime: return strftimeNow(Self.apacheTime, at: Int(startMicros(r) / 1_000_000))
        case .ftime: return strftimeNow(ftimeFormat, at: Int(startMicros(r) / 1_000_000))
        case .ctime:
            var t = Int(startMicros(r) / 1_000_000)
            var buf = [CChar](repeating: 0, count: 32)
            return ctime_r(&t, &buf) != nil ? String(String(cString: buf).prefix(24)) : ""
        case .epoch: return String(time(nil))
        case .pid: return String(pid)
        case .wid: return String(workerID)
        case .switches, .modifier1, .modifier2: return "0"
        case .vars: return String(r.cgi?.count ?? (r.head.map { $0.headers.count + 10 } ?? 0))
        case .core: return String(r.core)
        case .vsz: return String(Self.memory().vsz)
        case .rss: return String(Self.memory().rss)
        case .vszM: return String(Self.memory().vsz >> 20)
        case .rssM: return String(Self.memory().rss >> 20)
        case .pktsize:
            if let cgi = r.cgi { return String(cgi.reduce(0) { $0 + 4 + $1.name.utf8.count + $1.value.count }) }
            guard let h = r.head else { return "0" }
            return String(h.method.utf8.count + h.target.utf8.count + 12
                          + h.headers.fields.reduce(0) { $0 + $1.name.utf8.count + $1.valueBytes.count + 4 } + 2)
        case .headers: return String(r.headerCount)
        case .werr: return String(r.writeErrors)
        case .rerr: return String(r.readErrors)
        case .ioerr: return String(r.readErrors + r.writeErrors)
        case .note: return r.note ?? ""
        }
    }

    /// Wall-clock microseconds at the request's start: now, less the time it took.
    private func startMicros(_ r: RequestFacts) -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let now = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec / 1000)
        let elapsed = (monotonicNanoseconds() - r.started) / 1000
        return now > elapsed ? now - elapsed : now
    }

    /// This process's address space and resident size in bytes (/proc/self/statm).
    static func memory() -> (vsz: Int, rss: Int) {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (0, 0) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return (0, 0) }
        let fields = buf[0..<n].split(separator: UInt8(ascii: " ")).prefix(2).map { Int(String(decoding: $0, as: UTF8.self)) ?? 0 }
        guard fields.count == 2 else { return (0, 0) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (fields[0] * page, fields[1] * page)
    }
}

/// `%2F` -> `/`: PATH_INFO as uWSGI (and WSGI) give it, for routes and `%(var.PATH_INFO)`.
func percentDecoded(_ s: String) -> String {
    guard s.utf8.contains(UInt8(ascii: "%")), let bytes = PercentDecoding.decode(s) else { return s }
    return String(decoding: bytes, as: UTF8.self)
}
