import Glibc
import HTTP
import Posix
import SWSGIConfig

/// One line per request (one write(2) each): method, target, status, bytes, duration, worker; or the
/// `--log-format` line. `--disable-logging` silences it; `--log-4xx`, `--log-5xx`, `--log-slow`,
/// `--log-big`, `--log-zero`, `--log-sendfile`, `--log-ioerror` bring matching requests back (uWSGI's
/// log_request); `--route REGEX donotlog:` drops a path's lines whatever the rest says.
final class AccessLog {
    let enabled: Bool
    let log4xx: Bool
    let log5xx: Bool
    let prefix: String
    private var stampSecond = -1
    private var stamp = ""

    let format: RequestLogFormat?
    /// `--memory-report`.
    let memoryReport: Bool
    let logging: LoggingOptions
    /// `--route` rules, compiled once.
    private let routes: [(LineMatcher, RouteRule.Action)]
    /// Any condition that logs a request `--disable-logging` would drop.
    private let hasConditions: Bool

    init(settings: ServerOptions, workerID: Int, remote: String = "-") {
        enabled = !settings.disableLogging
        log4xx = settings.log4xx
        log5xx = settings.log5xx
        prefix = "swsgi worker \(workerID) [pid \(getpid())]"
        memoryReport = settings.memoryReport
        logging = settings.logging
        format = settings.logging.format.map { RequestLogFormat($0, workerID: workerID, logging: settings.logging) }
        routes = settings.logging.requestRoutesTable.map { (LineMatcher($0.pattern), $0.action) }
        let l = settings.logging
        hasConditions = log4xx || log5xx || l.slowMilliseconds > 0 || l.bigBytes > 0 || l.zero || l.sendfile || l.ioError
    }

    /// Whether a request with this status may get a line (the size and time conditions are checked in `write`).
    func wants(status: Int) -> Bool { enabled || hasConditions }

    /// `--route REGEX donotlog:` on PATH_INFO: the first matching rule decides (continue/last stop the table).
    func routedAway(path: String) -> Bool {
        if routes.isEmpty { return false }
        let info = percentDecoded(path)
        for (m, action) in routes where m.matches(info) {
            return action == .donotlog
        }
        return false
    }

    /// uWSGI's log_request conditions, for a request `--disable-logging` would not log.
    private func conditionsLog(_ r: RequestFacts) -> Bool {
        let l = logging
        if l.zero && r.bodyBytes == 0 { return true }
        if l.slowMilliseconds > 0 && r.durationMicros / 1000 >= UInt64(l.slowMilliseconds) { return true }
        if log4xx && (400...499).contains(r.status) { return true }
        if log5xx && (500...599).contains(r.status) { return true }
        if l.bigBytes > 0 && UInt64(r.bodyBytes) >= l.bigBytes { return true }
        if l.sendfile && r.viaSendfile { return true }
        if l.ioError && (r.readErrors > 0 || r.writeErrors > 0) { return true }
        return false
    }

    func write(method: String, path: String, status: Int, bytes: Int, started: UInt64, note: String?, head: HTTPRequestHead? = nil,
               headerBytes: Int = 0, headerCount: Int = 0, viaSendfile: Bool = false, cgi: [(name: String, value: [UInt8])]? = nil,
               peer: SocketAddresses? = nil, core: Int = 0) {
        if let head, routedAway(path: head.path) { return }
        var r = RequestFacts(method: method, uri: path, status: status, bodyBytes: bytes, headerBytes: headerBytes,
                             headerCount: headerCount, started: started, ended: monotonicNanoseconds(), head: head, cgi: cgi,
                             peer: peer, note: note, viaSendfile: viaSendfile, core: core)
        if let note, note.contains("response not completed") { r.writeErrors = 1 }
        if status == 408 { r.readErrors = 1 }
        guard enabled || conditionsLog(r) else { return }
        let router = LogRouter.shared.setup
        if let format {
            router.request(format.line(r))
            return
        }
        let micros = r.durationMicros
        let duration = logging.micros ? "\(micros)us" : "\(micros / 1000).\(String(repeating: "0", count: 3 - String(micros % 1000).count))\(micros % 1000)ms"
        var text = "\(method) \(path) \(status) \(bytes)B \(duration)" + (note.map { " (\($0))" } ?? "")
        if logging.xForwardedFor {
            let addr = RequestLogFormat.address(r, xForwardedFor: true)
            text = (addr.isEmpty ? "-" : addr) + " " + text
        }
        if memoryReport { text += Self.memoryUse() }
        // --log-encoder json: swsgi's JSON object, built by ServerLog like every other line.
        if router.swsgiJSON && router.requestLoggers.isEmpty { ServerLog.line(text); return }
        let head = router.datePrefix() ?? (wallClock() + " ")
        router.request("\(head)\(prefix): \(text)")
    }

    /// A request refused before the app ran (`HTTPResponseWriter.errorResponse`): its method and target
    /// when the request line was read, the bytes of the error body sent, and the reason in plain words.
    /// The method and target are the client's bytes, up to the parser's limits (8 KB): logged cut to
    /// `refusedFieldLimit` bytes with an ellipsis, the original length in the note, so a refused request
    /// makes a short line however long it was.
    func refused(_ e: HTTPError, started: UInt64) {
        let method = Self.cut(e.method ?? "-", to: 32)
        let target = Self.cut(e.target ?? "-", to: Self.refusedFieldLimit)
        var note = e.message
        if target.cut || method.cut {
            let what = [method.cut ? "method of \(method.length) bytes" : nil, target.cut ? "target of \(target.length) bytes" : nil]
            note += "; \(what.compactMap { $0 }.joined(separator: ", ")) cut in this line"
        }
        write(method: method.text, path: target.text, status: e.status,
              bytes: HTTPResponseWriter.errorBody(status: e.status).count, started: started, note: note)
    }

    static let refusedFieldLimit = 256

    /// `text` cut to `limit` bytes (on a UTF-8 boundary) plus an ellipsis when longer.
    static func cut(_ text: String, to limit: Int) -> (text: String, cut: Bool, length: Int) {
        let bytes = text.utf8
        guard bytes.count > limit else { return (text, false, bytes.count) }
        var end = bytes.index(bytes.startIndex, offsetBy: limit)
        // Never split a character's bytes: back up to the start of a scalar.
        while end > bytes.startIndex, UTF8.isContinuation(bytes[end]) { end = bytes.index(before: end) }
        return (String(decoding: bytes[..<end], as: UTF8.self) + "…", true, bytes.count)
    }

    /// uWSGI's memory-report text: ` {address space usage: N bytes/NMB} {rss usage: N bytes/NMB}`, from /proc/self/statm.
    static func memoryUse() -> String {
        let (vsz, rss) = RequestLogFormat.memory()
        return " {address space usage: \(vsz) bytes/\(vsz >> 20)MB} {rss usage: \(rss) bytes/\(rss >> 20)MB}"
    }

    /// The timestamp is rebuilt once a second, not per request.
    private func wallClock() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != stampSecond {
            stampSecond = ts.tv_sec
            stamp = String(timestamp().prefix(19)) + "Z"
        }
        return stamp
    }
}

extension AccessLog {
    /// A connection whose request head did not complete within --header-timeout (both worker loops): 408, and its
    /// line naming the method and target when the request line had arrived whole.
    func answerHeadTimeout(_ c: Connection, started: Instant) {
        try? c.writeAll(HTTPResponseWriter.errorResponse(status: 408, date: DateClock.now), timeoutMilliseconds: 100)
        let line = c.uwsgi == nil ? c.parser.partialRequestLine : nil
        write(method: line?.method ?? "-", path: line?.target ?? "-", status: 408,
              bytes: HTTPResponseWriter.errorBody(status: 408).count, started: started,
              note: "request head not complete in time")
    }
}
