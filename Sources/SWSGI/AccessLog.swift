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
    let encoded: Bool

    init(settings: ServerOptions, workerID: Int, remote: String = "-") {
        enabled = !settings.disableLogging
        log4xx = settings.log4xx
        log5xx = settings.log5xx
        prefix = "swsgi worker \(workerID) [pid \(getpid())]"
        encoded = settings.logEncoder != .plain
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
        let text = "\(method) \(path) \(status) \(bytes)B \(ms)ms" + (note.map { " (\($0))" } ?? "")
        // Without --log-format, --log-encoder json/format wraps request lines like every other line.
        if encoded { ServerLog.line(text); return }
        writeStderr("\(wallClock()) \(prefix): \(text)")
    }

    /// A request refused before the app ran (`HTTPResponseWriter.errorResponse`): its method and target
    /// when the request line was read, the bytes of the error body sent, and the reason in plain words.
    func refused(_ e: HTTPError, started: UInt64) {
        write(method: e.method ?? "-", path: e.target ?? "-", status: e.status,
              bytes: HTTPResponseWriter.errorBody(status: e.status).count, started: started, note: e.message)
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
