import Glibc
import HTTP
import Posix
import SWSGIConfig

/// `--log-format`: the request log line built from uWSGI's request variables (`%(method)`, `%(uri)`,
/// `%(status)`, `%(size)`, `%(msecs)`, `%(addr)`, ...). A template that starts with `{` is treated as
/// JSON: every value is JSON-escaped, so a hostile URI cannot break the line's syntax.
struct RequestLogFormat {
    let parts: [LogTemplate.Part]
    let json: Bool
    let workerID: Int
    let remote: String
    let pid = getpid()

    init(_ template: String, workerID: Int, remote: String) throws {
        parts = try LogTemplate.parse(template, known: LogTemplate.requestVariables)
        json = template.hasPrefix("{")
        self.workerID = workerID
        self.remote = remote
    }

    func line(method: String, uri: String, status: Int, bytes: Int, started: UInt64, note: String?, head: HTTPRequestHead?) -> String {
        let micros = (monotonicNanoseconds() - started) / 1000
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .variable(let v):
                let value: String = switch v {
                case "method": method
                case "uri": uri
                case "status": "\(status)"
                case "size", "rsize": "\(bytes)"
                case "msecs": "\(micros / 1000)"
                case "micros": "\(micros)"
                case "addr": remote
                case "pid": "\(pid)"
                case "wid": "\(workerID)"
                case "epoch": "\(ts.tv_sec)"
                case "time", "ltime": timestamp()
                case "proto": head.map { "HTTP/\($0.version.major).\($0.version.minor)" } ?? "-"
                case "host": head?.headers.first("Host") ?? "-"
                case "uagent": head?.headers.first("User-Agent") ?? "-"
                case "referer": head?.headers.first("Referer") ?? "-"
                case "note": note ?? ""
                default: "-"
                }
                out += json ? jsonEscaped(value) : value
            }
        }
        return out
    }
}
