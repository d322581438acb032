import Glibc
import HTTP
import Posix
import SWSGIConfig

/// One line per request on stderr (one write(2) each): method, target, status, bytes, duration, worker.
/// `--disable-logging` silences it; `--log-4xx` / `--log-5xx` bring error responses back.
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
    let encoded: Bool

    init(settings: ServerOptions, workerID: Int, remote: String = "-") {
        enabled = !settings.disableLogging
        log4xx = settings.log4xx
        log5xx = settings.log5xx
        prefix = "swsgi worker \(workerID) [pid \(getpid())]"
        encoded = settings.logEncoder != .plain
        memoryReport = settings.memoryReport
        format = settings.logFormat.flatMap { try? RequestLogFormat($0, workerID: workerID, remote: remote) }
    }

    /// Whether a request with this status gets a line (--disable-logging keeps 4xx/5xx with --log-4xx/--log-5xx).
    func wants(status: Int) -> Bool {
        enabled || (log4xx && (400..<500).contains(status)) || (log5xx && status >= 500)
    }

    func write(method: String, path: String, status: Int, bytes: Int, started: UInt64, note: String?, head: HTTPRequestHead? = nil) {
        guard wants(status: status) else { return }
        if let format {
            writeStderr(format.line(method: method, uri: path, status: status, bytes: bytes, started: started, note: note, head: head))
            return
        }
        let micros = (monotonicNanoseconds() - started) / 1000
        let ms = "\(micros / 1000).\(String(repeating: "0", count: 3 - String(micros % 1000).count))\(micros % 1000)"
        var text = "\(method) \(path) \(status) \(bytes)B \(ms)ms" + (note.map { " (\($0))" } ?? "")
        if memoryReport { text += Self.memoryUse() }
        // Without --log-format, --log-encoder json/format wraps request lines like every other line.
        if encoded { ServerLog.line(text); return }
        writeStderr("\(wallClock()) \(prefix): \(text)")
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
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "" }
        let fields = buf[0..<n].split(separator: UInt8(ascii: " ")).prefix(2).map { Int(String(decoding: $0, as: UTF8.self)) ?? 0 }
        guard fields.count == 2 else { return "" }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let vsz = fields[0] * page, rss = fields[1] * page
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
