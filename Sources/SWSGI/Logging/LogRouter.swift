import Glibc
import Posix
import SWSGIConfig

/// Where the server's lines and the request lines go, as uWSGI's log master decides it
/// (core/logging.c: uwsgi_master_log, uwsgi_master_req_log), but done by the process that logs:
/// a `log-route` whose regex matches sends the line to its named logger (and nowhere else), else every
/// unnamed logger gets it, else fd 2; each output gets the line through the encoders meant for it.
/// Request lines go to the `req-logger`s when there are any (`log-req-route` first), else the same way
/// as the server's lines. Built once in the master before it forks; read-only afterwards.
final class LogRouter: @unchecked Sendable {
    static let shared = LogRouter()
    private(set) var setup = LogSetup()
    /// Whose lines these are (`swsgi master`, `swsgi worker 2`): told when the master sets up and right
    /// after each fork, while the process has one thread.
    private(set) var role = ProcessRole.starting

    /// Opens every logger the options name (master, before any fork); throws with the logger named.
    func install(_ options: ServerOptions) throws {
        setup = try LogSetup(options)
    }

    func enter(_ role: ProcessRole) { self.role = role }
}

/// A compiled `log-route` / `route` regex: literal forms compare bytes, the rest run Swift's Regex.
struct LineMatcher {
    let literal: LinePattern.Literal?
    let regex: Regex<AnyRegexOutput>?

    init(_ p: LinePattern) {
        literal = p.literal
        regex = p.literal == nil ? try? Regex(p.source) : nil
    }

    func matches(_ s: String) -> Bool {
        if let literal {
            let u = s.utf8
            switch literal {
            case .prefix(let b): return u.starts(with: b)
            case .exact(let b): return u.elementsEqual(b)
            case .suffix(let b): return u.count >= b.count && u.suffix(b.count).elementsEqual(b)
            case .contains(let b):
                if b.isEmpty { return true }
                let a = Array(u)
                guard a.count >= b.count else { return false }
                for i in 0...(a.count - b.count) where a[i] == b[0] && a[i..<(i + b.count)].elementsEqual(b) { return true }
                return false
            }
        }
        guard let regex else { return false }
        return (try? regex.firstMatch(in: s)) != nil
    }
}

final class LogSetup {
    /// fd 2 as a rotating file (`--logto`/`--daemonize` with `--log-maxsize`), else nil (plain fd 2).
    var mainLog: RotatingFile? = nil
    var loggers: [LogOutput] = []
    var requestLoggers: [LogOutput] = []
    var routes: [(LineMatcher, LogOutput)] = []
    var requestRoutes: [(LineMatcher, LogOutput)] = []
    var encoders: [LogEncoderStep] = []
    var requestEncoders: [LogEncoderStep] = []
    var date: LogDate? = nil
    /// `--log-drain` / `--log-filter`.
    var drains: [LineMatcher] = []
    var filters: [LineMatcher] = []
    /// Nothing but fd 2 and swsgi's plain lines: the fast path.
    var plain = true
    /// The server's lines are encoded with swsgi's own JSON object (`--log-encoder json`).
    var swsgiJSON = false

    init() {}

    convenience init(_ o: ServerOptions) throws {
        self.init()
        try configure(o)
    }

    private func configure(_ o: ServerOptions) throws {
        let l = o.logging
        date = l.date
        encoders = l.encoders
        requestEncoders = l.requestEncoders
        swsgiJSON = l.encoders.contains { $0.kind == .swsgiJSON && $0.useFor == nil }
        // One shared page for every rotating file's generation and lock.
        let rotating = l.loggers.count + l.requestLoggers.count + 1
        let mapping = try SharedMapping(byteCount: max(4096, rotating * RotatingFile.sharedBytes))
        var next = 0
        func slot() -> UnsafeMutableRawPointer {
            defer { next += 1 }
            return mapping.base + next * RotatingFile.sharedBytes
        }
        if let path = o.daemonize ?? o.logTo, l.maxSize > 0 {
            mainLog = RotatingFile(path: path, fd: 2, alsoAt: [1], maxSize: l.maxSize, backupName: l.backupName,
                                   chmod: o.logFileMode, shared: slot())
        }
        var opened: [String: LogOutput] = [:]
        func open(_ spec: LoggerSpec) throws -> LogOutput {
            do {
                return try LogOutput.open(spec, mainLog: mainLog, chmod: o.logFileMode, slot: slot)
            } catch {
                throw SWSGIError("--logger \(spec): \(error)")
            }
        }
        for spec in l.loggers {
            let out = try open(spec)
            loggers.append(out)
            if let id = spec.id { opened[id] = out }
        }
        for spec in l.requestLoggers { requestLoggers.append(try open(spec)) }
        // uWSGI resolves both kinds of route among the `logger =` ids; an unknown id routes nowhere.
        for r in l.routes {
            guard let out = opened[r.id] else { throw SWSGIError("--log-route \(r.id) \(r.pattern): no --logger is named '\(r.id)'") }
            routes.append((LineMatcher(r.pattern), out))
        }
        for r in l.requestRoutes {
            guard let out = opened[r.id] else { throw SWSGIError("--log-req-route \(r.id) \(r.pattern): no --logger is named '\(r.id)'") }
            requestRoutes.append((LineMatcher(r.pattern), out))
        }
        drains = l.drains.map(LineMatcher.init)
        filters = l.filters.map(LineMatcher.init)
        plain = drains.isEmpty && filters.isEmpty && mainLog == nil && loggers.isEmpty && requestLoggers.isEmpty && encoders.isEmpty && date == nil
    }

    /// `--logfile-chown`: the log files (fd 2's and every file logger's) to the user the server drops to,
    /// so the unprivileged processes can reopen them after a rotation (core/utils.c: fchown of the log fd).
    func chown(uid: uid_t, gid: gid_t, logFile: Bool) throws {
        if logFile { _ = try syscall("fchown", "log file") { fchown(2, uid, gid) } }
        for out in loggers + requestLoggers {
            if let f = out.file { _ = try syscall("fchown", f.path) { fchown(f.fd, uid, gid) } }
        }
    }

    /// What a plain line starts with instead of swsgi's ISO timestamp: `--log-date`'s `DATE - `, or nothing
    /// when an encoder template frames the line (uWSGI's lines carry no date unless asked, and
    /// `${strftime:...}` is how those templates date them); nil keeps the timestamp.
    func datePrefix() -> String? {
        if let date { return logDatePrefix(date) }
        return encoders.contains { $0.kind != .swsgiJSON } ? "" : nil
    }

    /// The line to fd 2 (through its rotation when it has one).
    func writeMain(_ line: String) {
        if let mainLog { mainLog.write(line) } else { LogOutput.writeLine(line, to: 2) }
    }

    /// A server line (or a request line when there is no `req-logger`): routed, encoded, written.
    func server(_ line: String) {
        if plain { writeMain(line); return }
        if drains.contains(where: { $0.matches(line) }) { return }
        if !filters.isEmpty && !filters.contains(where: { $0.matches(line) }) { return }
        var routed = false
        for (m, out) in routes where m.matches(line) {
            out.write(encode(line, encoders, for: out.id))
            routed = true
        }
        if routed { return }
        var wrote = false
        for out in loggers where out.id == nil {
            out.write(encode(line, encoders, for: nil))
            wrote = true
        }
        if !wrote { writeMain(encode(line, encoders, for: nil)) }
    }

    /// A request line: to the `req-logger`s when there are any, else as a server line.
    func request(_ line: String) {
        if requestLoggers.isEmpty { server(line); return }
        var routed = false
        for (m, out) in requestRoutes where m.matches(line) {
            out.write(encode(line, requestEncoders, for: out.id))
            routed = true
        }
        if routed { return }
        var wrote = false
        for out in requestLoggers where out.id == nil {
            out.write(encode(line, requestEncoders, for: nil))
            wrote = true
        }
        if !wrote { writeMain(encode(line, requestEncoders, for: nil)) }
    }

    /// uWSGI's encoder chain: each step whose `:ID` is absent or names this output, in order.
    func encode(_ line: String, _ steps: [LogEncoderStep], for id: String?) -> String {
        var text = line
        for step in steps where step.useFor == nil || step.useFor == id {
            switch step.kind {
            case .prefix(let p): text = p + text
            case .suffix(let s): text += s
            case .nl: text += "\n"
            case .format(let parts): text = LogEncoding.fill(parts, msg: text, json: false)
            case .json(let parts): text = LogEncoding.fill(parts, msg: text, json: true)
            case .swsgiJSON: break  // ServerLog builds that object itself, from the message's parts.
            }
        }
        return text
    }
}

enum LogEncoding {
    /// An encoder template filled for one line: `${msg}` without its newline, `${msgnl}` with one.
    static func fill(_ parts: [LogTemplate.Part], msg: String, json: Bool) -> String {
        var out = ""
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let bare = msg.hasSuffix("\n") ? String(msg.dropLast()) : msg
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .variable(let v):
                switch v {
                case "msg": out += json ? jsonEscaped(bare) : bare
                case "msgnl": out += json ? jsonEscaped(bare + "\n") : bare + "\n"
                case "unix": out += String(ts.tv_sec)
                case "micros": out += String(Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000))
                case "millis": out += String(Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec / 1_000_000))
                case "pid": out += String(getpid())
                case "worker": out += String(ServerLog.workerNumber)
                case "time": out += timestamp()
                default:
                    if v.hasPrefix("strftime:") {
                        let s = strftimeNow(String(v.dropFirst("strftime:".count)))
                        out += json ? jsonEscaped(s) : s
                    }
                }
            }
        }
        return out
    }
}

/// strftime(3) of the local time now, up to 63 bytes as uWSGI's buffer holds.
func strftimeNow(_ format: String, at seconds: Int? = nil) -> String {
    var t = seconds ?? time(nil)
    var tmv = tm()
    localtime_r(&t, &tmv)
    var buf = [CChar](repeating: 0, count: 64)
    let n = strftime(&buf, 64, format, &tmv)
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The `--log-date` prefix of a line: `Sun Dec  6 23:07:44 2026 - ` or the strftime text and ` - `.
func logDatePrefix(_ d: LogDate) -> String {
    switch d {
    case .ctime: return ctimeNow() + " - "
    case .strftime(let f): return strftimeNow(f) + " - "
    }
}
