import Common
import Glibc

/// uWSGI's logging options (core/logging.c, plugins/logfile, plugins/syslog), parsed once at start-up.
/// The runtime (module SWSGI) opens what these name in the master, before any fork.
public struct LoggingOptions: Equatable, Sendable {
    /// `--logger [ID ]KIND[:ARGS]` (repeatable): where the server's lines go. Named ones (an ID) get
    /// only the lines a `--log-route` sends them.
    public var loggers: [LoggerSpec] = []
    /// `--log-format` / `--logformat`: the request line's template; nil = swsgi's default line.
    public var format: String? = nil
    /// `--req-logger` / `--logger-req`: where request lines go instead of the server's log.
    public var requestLoggers: [LoggerSpec] = []
    /// `--log-route ID REGEX`: a server line matching REGEX goes to named logger ID (and not to the unnamed ones).
    public var routes: [LogRouteSpec] = []
    /// `--log-req-route ID REGEX`: the same for request lines (ID names a `--logger`, as in uWSGI).
    public var requestRoutes: [LogRouteSpec] = []
    /// `--log-encoder` (repeatable, applied in order) for the server's lines.
    public var encoders: [LogEncoderStep] = []
    /// `--log-req-encoder` for request lines going to `--req-logger`s.
    public var requestEncoders: [LogEncoderStep] = []
    /// `--log-maxsize`: rotate the `--logto`/`--daemonize` file once it passes this many bytes.
    public var maxSize: UInt64 = 0
    /// `--log-backupname`: the rotated file's name (default: the log's path + `.` + unix time).
    public var backupName: String? = nil
    /// `--log-truncate`: the `--logto` file is emptied at start-up.
    public var truncate = false
    /// `--log-drain REGEX`: server lines matching it are dropped; `--log-filter REGEX`: only matching ones are kept.
    public var drains: [LinePattern] = []
    public var filters: [LinePattern] = []
    /// `--log-date` / `--logdate` / `--log-prefix`: the server's lines start with this date (or text).
    public var date: LogDate? = nil
    /// `--logformat-strftime`: `%(ftime)` uses `--log-date`'s strftime format.
    public var formatStrftime = false
    /// `--log-micros`: the default request line gives the duration in microseconds.
    public var micros = false
    /// With `--disable-logging`, these still log a request: slower than N ms, bigger than N bytes,
    /// an empty body, sent with sendfile, one with read/write errors.
    public var slowMilliseconds = 0
    public var bigBytes: UInt64 = 0
    public var zero = false
    public var sendfile = false
    public var ioError = false
    /// `--log-x-forwarded-for`: `%(addr)` is the X-Forwarded-For header's value when there is one.
    public var xForwardedFor = false
    /// `--logfile-chown`: give the log file to `--uid`/`--gid` before dropping privileges.
    public var chown = false
    /// `--route REGEX donotlog:` and friends (the request-log part of uWSGI's internal routing).
    public var requestRoutesTable: [RouteRule] = []

    public init() {}

    /// The rules that involve several logging options: a route names a `--logger` that exists.
    func validate() throws(ConfigError) {
        let ids = Set(loggers.compactMap(\.id))
        for (r, flag) in routes.map({ ($0, "--log-route") }) + requestRoutes.map({ ($0, "--log-req-route") }) where !ids.contains(r.id) {
            throw ConfigError("\(flag) \(r.id) \(r.pattern): no --logger is named '\(r.id)' (name one: logger = \(r.id) stdio)")
        }
    }

    /// Whether the server's lines need the router (named loggers, routes, encoders, a date or several sinks).
    public var routesServerLines: Bool { !routes.isEmpty || loggers.count > 1 || loggers.contains { $0.id != nil } }
}

/// `--log-date`: uWSGI's `ctime` date (`Sun Dec  6 23:07:44 2026`) or a strftime format, then ` - `.
public enum LogDate: Equatable, Sendable {
    case ctime
    case strftime(String)

    static func parse(_ text: String) -> LogDate {
        ["", "true", "1", "on", "yes"].contains(text.lowercased()) ? .ctime : .strftime(text)
    }
}

/// One uWSGI logger: `[ID ]stdio`, `file:PATH`, `file:logfile=PATH[,maxsize=N][,backupname=B]`, `fd:N`,
/// `syslog[:IDENT[,FACILITY]]`, `rsyslog:HOST:PORT[,PREFIX]`.
public struct LoggerSpec: Equatable, Sendable, CustomStringConvertible {
    public var id: String?
    public var kind: Kind

    /// The logger as a config would write it.
    public var description: String {
        let k: String = switch kind {
        case .stdio: "stdio"
        case .file(let p, let m, let b):
            m == 0 && b == nil ? "file:\(p)" : "file:logfile=\(p)" + (m > 0 ? ",maxsize=\(m)" : "") + (b.map { ",backupname=\($0)" } ?? "")
        case .fd(let n): "fd:\(n)"
        case .syslog(let ident, _): "syslog:\(ident)"
        case .rsyslog(let a, let port, let prefix, _): "rsyslog:\(a)" + (a.hasPrefix("/") ? "" : ":\(port)") + (prefix.map { ",\($0)" } ?? "")
        }
        return (id.map { $0 + " " } ?? "") + k
    }

    public enum Kind: Equatable, Sendable {
        /// The log swsgi writes anyway (fd 2: `--logto` or the inherited stderr).
        case stdio
        case file(path: String, maxSize: UInt64, backupName: String?)
        case fd(Int32)
        /// Datagrams to /dev/log in syslog's format (RFC 3164), as glibc's syslog(3) writes them.
        case syslog(ident: String, facility: Int32)
        /// Datagrams (UDP to HOST:PORT, or a Unix datagram socket path), RFC 3164 with PREFIX as the tag
        /// (default `HOSTNAME uwsgi`), priority 29 unless given (uWSGI's rsyslog plugin).
        case rsyslog(address: String, port: Int, prefix: String?, priority: Int32)
    }

    static func parse(_ text: String) throws(ValueProblem) -> LoggerSpec {
        var id: String? = nil
        var rest = Substring(text)
        // uWSGI (setup_chosen_logger): an alphanumeric word before a space names the logger.
        if let space = rest.firstIndex(of: " "), rest[..<space].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }),
           space != rest.startIndex {
            id = String(rest[..<space])
            rest = rest[rest.index(after: space)...].drop { $0 == " " }
        }
        let name: Substring, arg: String?
        if let colon = rest.firstIndex(of: ":") {
            name = rest[..<colon]
            let a = String(rest[rest.index(after: colon)...])
            arg = a.isEmpty ? nil : a
        } else {
            name = rest
            arg = nil
        }
        switch name {
        case "stdio":
            return LoggerSpec(id: id, kind: .stdio)
        case "file":
            guard let arg else { throw ValueProblem("\(quoted(text)): file: needs a path (file:PATH or file:logfile=PATH,maxsize=N)") }
            if arg.contains("=") {
                var fields: [String: String] = [:]
                for kv in arg.split(separator: ",") {
                    guard let eq = kv.firstIndex(of: "="), ["logfile", "maxsize", "backupname"].contains(kv[..<eq]) else {
                        throw ValueProblem("\(quoted(text)): expected logfile=PATH[,maxsize=N][,backupname=NAME]")
                    }
                    fields[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
                }
                guard let path = fields["logfile"], !path.isEmpty else { throw ValueProblem("\(quoted(text)): missing logfile=PATH") }
                var max: UInt64 = 0
                if let m = fields["maxsize"] {
                    guard let v = UInt64(m) else { throw ValueProblem("\(quoted(text)): maxsize \(quoted(m)) is not a number of bytes") }
                    max = v
                }
                return LoggerSpec(id: id, kind: .file(path: path, maxSize: max, backupName: fields["backupname"]))
            }
            return LoggerSpec(id: id, kind: .file(path: arg, maxSize: 0, backupName: nil))
        case "fd":
            guard let arg, let n = Int32(arg), n >= 0 else { throw ValueProblem("\(quoted(text)): fd: needs a file descriptor number") }
            return LoggerSpec(id: id, kind: .fd(n))
        case "syslog":
            var ident = "uwsgi", facility: Int32 = 3 << 3  // LOG_DAEMON, as uWSGI
            if let arg {
                let parts = arg.split(separator: ",", maxSplits: 1).map(String.init)
                ident = parts[0]
                if parts.count == 2 {
                    guard let f = syslogFacilities[parts[1]] else {
                        throw ValueProblem("\(quoted(text)): unknown syslog facility \(quoted(parts[1])) (known: \(syslogFacilities.keys.sorted().joined(separator: ", ")))")
                    }
                    facility = f
                }
            }
            return LoggerSpec(id: id, kind: .syslog(ident: ident, facility: facility))
        case "rsyslog":
            // plugins/rsyslog: ADDRESS[:PORT][,PREFIX[,PRIORITY]]; ADDRESS is a host or a Unix datagram socket path.
            guard let arg else { throw ValueProblem("\(quoted(text)): rsyslog: needs an address (HOST[:PORT] or /path/of/socket)") }
            let parts = arg.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            var host = parts[0], port = 514
            if !host.hasPrefix("/"), let colon = host.lastIndex(of: ":") {
                guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                    throw ValueProblem("\(quoted(text)): rsyslog: the port must be 1-65535")
                }
                port = p
                host = String(host[..<colon])
            }
            guard !host.isEmpty else { throw ValueProblem("\(quoted(text)): rsyslog: needs an address") }
            var priority: Int32 = 29
            if parts.count == 3 {
                guard let p = Int32(parts[2]), (0...191).contains(p) else { throw ValueProblem("\(quoted(text)): rsyslog: priority must be 0-191") }
                priority = p
            }
            return LoggerSpec(id: id, kind: .rsyslog(address: host, port: port, prefix: parts.count >= 2 ? parts[1] : nil, priority: priority))
        case "python":
            // plugins/python/python_plugin.c uwsgi_python_logger: each line of the logging process goes to
            // logging.getLogger(NAME).error() under the GIL; swsgi's log lines never enter Python (a master
            // or a worker mid-request would need the interpreter, and a failing handler would lose them).
            throw ValueProblem("\(quoted(text)): not supported: the python logger (uWSGI's: each of its log lines to logging.getLogger(NAME).error() in the app's interpreter) has no swsgi equivalent; "
                               + "swsgi's lines never go through Python: use stdio, file:PATH or syslog (the app's own logging is untouched)")
        default:
            throw ValueProblem("\(quoted(text)): unknown logger \(quoted(String(name))) (swsgi has stdio, file, fd, syslog, rsyslog)")
        }
    }
}

/// syslog(3) facilities by uWSGI's names (plugins/syslog), already shifted (`LOG_LOCAL0` = 16 << 3).
let syslogFacilities: [String: Int32] = [
    "kern": 0 << 3, "user": 1 << 3, "mail": 2 << 3, "daemon": 3 << 3, "auth": 4 << 3, "security": 4 << 3,
    "syslog": 5 << 3, "lpr": 6 << 3, "news": 7 << 3, "uucp": 8 << 3, "cron": 9 << 3, "authpriv": 10 << 3,
    "ftp": 11 << 3, "local0": 16 << 3, "local1": 17 << 3, "local2": 18 << 3, "local3": 19 << 3,
    "local4": 20 << 3, "local5": 21 << 3, "local6": 22 << 3, "local7": 23 << 3,
]

/// `--log-route ID REGEX`.
public struct LogRouteSpec: Equatable, Sendable {
    public var id: String
    public var pattern: LinePattern

    static func parse(_ text: String) throws(ValueProblem) -> LogRouteSpec {
        guard let space = text.firstIndex(of: " ") else { throw ValueProblem("\(quoted(text)): expected LOGGER-ID REGEX") }
        let id = String(text[..<space])
        let regex = String(text[text.index(after: space)...])
        return LogRouteSpec(id: id, pattern: try LinePattern(regex))
    }
}

/// One step of uWSGI's encoder chain (`--log-encoder NAME[:LOGGER-ID] [ARGS]`): `prefix TEXT`, `suffix TEXT`,
/// `nl`, `format TEMPLATE`, `json TEMPLATE` (`${msg}` JSON-escaped). `:ID` applies it only to that named logger.
public struct LogEncoderStep: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case prefix(String)
        case suffix(String)
        case nl
        case format([LogTemplate.Part])
        case json([LogTemplate.Part])
        /// swsgi's own JSON object (`json` with no template): time, pid, worker, source, msg.
        case swsgiJSON
    }
    public var kind: Kind
    public var useFor: String?

    static func parse(_ text: String) throws(ValueProblem) -> LogEncoderStep {
        let space = text.firstIndex(of: " ")
        var head = String(text[..<(space ?? text.endIndex)])
        let args = space.map { String(text[text.index(after: $0)...]) } ?? ""
        var useFor: String? = nil
        if let colon = head.firstIndex(of: ":") {
            useFor = String(head[head.index(after: colon)...])
            head = String(head[..<colon])
        }
        let kind: Kind
        switch head {
        case "prefix": kind = .prefix(args)
        case "suffix": kind = .suffix(args)
        case "nl": kind = .nl
        case "format": kind = .format(try LogTemplate.encoderParts(args))
        case "json": kind = args.isEmpty ? .swsgiJSON : .json(try LogTemplate.encoderParts(args))
        case "gzip", "compress":
            throw ValueProblem("\(quoted(text)): the \(head) encoder writes binary lines; not supported (compress the files with logrotate)")
        default:
            throw ValueProblem("\(quoted(text)): unknown encoder \(quoted(head)) (swsgi has prefix, suffix, nl, format, json)")
        }
        return LogEncoderStep(kind: kind, useFor: useFor)
    }
}

/// `--route REGEX ACTION:`: the request-log part of uWSGI's internal routing, matched against PATH_INFO.
/// `donotlog:` skips the request's log line; `continue:` / `last:` stop the table (uWSGI's
/// `continue` ends routing and hands the request to the app; `last` the same).
public struct RouteRule: Equatable, Sendable {
    public enum Action: Equatable, Sendable { case donotlog, stop }
    public var pattern: LinePattern
    public var action: Action

    static func parse(_ text: String) throws(ValueProblem) -> RouteRule {
        let t = text.trimmingSpaces()
        guard let space = t.lastIndex(where: { $0 == " " || $0 == "\t" }) else {
            throw ValueProblem("\(quoted(text)): expected REGEX ACTION (like ^/health donotlog:)")
        }
        let regex = String(t[..<space]).trimmingSpaces()
        let action = String(t[t.index(after: space)...])
        let name = action.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? action
        let a: Action
        switch name {
        case "donotlog": a = .donotlog
        case "continue", "last", "break": a = .stop
        default:
            throw ValueProblem("\(quoted(text)): the route action \(quoted(name)) is not supported (swsgi's routes: donotlog, continue, last, break); do it in nginx in front")
        }
        return RouteRule(pattern: try LinePattern(String(regex)), action: a)
    }
}

/// A PCRE-style pattern (uWSGI's regexps), searched anywhere in a line. Plain prefixes (`^/health`),
/// whole strings (`^/x$`) and substrings are compared as bytes, so the common routes cost no regex run;
/// the rest use Swift's Regex (lookahead and `\s` as in PCRE).
public struct LinePattern: Equatable, Sendable, CustomStringConvertible {
    public enum Literal: Equatable, Sendable { case prefix([UInt8]), exact([UInt8]), contains([UInt8]), suffix([UInt8]) }
    public let source: String
    /// Set when the pattern is a literal in disguise.
    public let literal: Literal?
    public var description: String { source }

    init(_ source: String) throws(ValueProblem) {
        guard !source.isEmpty else { throw ValueProblem("an empty regular expression") }
        self.source = source
        literal = Self.literal(of: source)
        if literal == nil {
            do { _ = try Regex(source) } catch {
                throw ValueProblem("\(quoted(source)) is not a valid regular expression: \(error)")
            }
            if Self.nestsRepeats(source) {
                throw ValueProblem("\(quoted(source)) repeats a group that holds a repeat (like (a+)+): Swift's Regex has no match limit (uWSGI's PCRE has), so some paths take exponential time and hold a worker; write it with one level of repetition")
            }
        }
    }

    /// True when a repeated group (`*`, `+`, `{n,}`, `{n,m}` with m > 1) contains a repeat: the shape
    /// whose failed matches backtrack through every way of splitting the input.
    static func nestsRepeats(_ source: String) -> Bool {
        let c = Array(source.unicodeScalars)
        var holdsRepeat: [Bool] = []  // per open group
        func repeatLength(at i: Int) -> Int? {
            guard i < c.count else { return nil }
            if c[i] == "*" || c[i] == "+" { return 1 }
            guard c[i] == "{" else { return nil }
            var j = i + 1, low = "", high: String? = nil
            while j < c.count, c[j] != "}" {
                if c[j] == "," { if high != nil { return nil }; high = "" }
                else if c[j].properties.numericType != nil, c[j].isASCII { if high != nil { high! += String(c[j]) } else { low += String(c[j]) } }
                else { return nil }
                j += 1
            }
            guard j < c.count, !low.isEmpty || high.map({ !$0.isEmpty }) == true else { return nil }
            if let high, !high.isEmpty { return (Int(high) ?? 2) > 1 ? j - i + 1 : nil }
            if high != nil { return j - i + 1 }  // {n,}
            return (Int(low) ?? 2) > 1 ? j - i + 1 : nil
        }
        var i = 0
        while i < c.count {
            switch c[i] {
            case "\\":
                i += 2
            case "[":
                var j = i + 1
                if j < c.count, c[j] == "^" { j += 1 }
                if j < c.count, c[j] == "]" { j += 1 }
                while j < c.count, c[j] != "]" { j += c[j] == "\\" ? 2 : 1 }
                i = j + 1
            case "(":
                holdsRepeat.append(false)
                i += 1
                if i < c.count, c[i] == "?" {
                    var j = i + 1
                    while j < c.count, !":!=>)".unicodeScalars.contains(c[j]) { j += 1 }
                    i = j < c.count && c[j] != ")" ? j + 1 : j
                }
            case ")":
                let inner = holdsRepeat.popLast() ?? false
                i += 1
                if let n = repeatLength(at: i) {
                    if inner { return true }
                    i += n
                    if !holdsRepeat.isEmpty { holdsRepeat[holdsRepeat.count - 1] = true }
                } else if inner, !holdsRepeat.isEmpty {
                    holdsRepeat[holdsRepeat.count - 1] = true
                }
            default:
                if let n = repeatLength(at: i) {
                    if !holdsRepeat.isEmpty { holdsRepeat[holdsRepeat.count - 1] = true }
                    i += n
                } else {
                    i += 1
                }
            }
        }
        return false
    }

    /// `^abc` -> prefix, `^abc$` -> exact, `abc` -> contains, `abc$` -> suffix; a trailing `.*` (no `$`) is dropped.
    static func literal(of source: String) -> Literal? {
        var s = Substring(source)
        let anchoredStart = s.hasPrefix("^")
        if anchoredStart { s = s.dropFirst() }
        var anchoredEnd = false
        if s.hasSuffix(".*") && !s.hasSuffix("\\.*") { s = s.dropLast(2) }
        else if s.hasSuffix("$") && !s.hasSuffix("\\$") { anchoredEnd = true; s = s.dropLast() }
        var bytes: [UInt8] = []
        var escaped = false
        for c in s.unicodeScalars {
            if escaped {
                // Only escaped punctuation is a literal; \d, \s, \w... are classes.
                guard c.isASCII, !(c.properties.isAlphabetic || ("0"..."9").contains(c)) else { return nil }
                bytes += Array(String(c).utf8)
                escaped = false
                continue
            }
            if c == "\\" { escaped = true; continue }
            if ".^$|?*+()[]{}".unicodeScalars.contains(c) { return nil }
            bytes += Array(String(c).utf8)
        }
        if escaped { return nil }
        switch (anchoredStart, anchoredEnd) {
        case (true, true): return .exact(bytes)
        case (true, false): return .prefix(bytes)
        case (false, true): return .suffix(bytes)
        case (false, false): return .contains(bytes)
        }
    }
}

extension ServerOptions {
    /// uWSGI's log master sends everything a process writes to its loggers, the app's own output too.
    /// swsgi's processes write their lines themselves, so the first unnamed `file:` logger, when no
    /// `--logto`/`--daemonize` names a file, becomes the log file fd 1 and 2 point at (with its
    /// rotation): the app's prints and tracebacks land there as they would under uWSGI.
    public func withFileLoggerAsLogTo() -> ServerOptions {
        guard logTo == nil, daemonize == nil,
              let i = logging.loggers.firstIndex(where: { if $0.id == nil, case .file = $0.kind { true } else { false } }),
              case .file(let path, let maxSize, let backupName) = logging.loggers[i].kind else { return self }
        var o = self
        o.logTo = path
        if maxSize > 0 { o.logging.maxSize = maxSize }
        if backupName != nil { o.logging.backupName = backupName }
        o.logging.loggers[i].kind = .stdio
        return o
    }
}
