import Glibc
import Posix
import SWSGIConfig

/// The server's own log lines (not the request log), one write(2) each, encoded as `--log-encoder` says:
/// plain (`TIME swsgi master [pid N]: message`), `json` (one object per line, so log shippers parse it)
/// or a `format` template.
public enum ServerLog {
    public static func line(_ message: String) {
        let rt = ServicesRuntime.shared
        let (source, worker): (String, Int) = switch rt.role {
        case .master: ("swsgi master", 0)
        case .worker(let n): ("swsgi worker \(n)", n)
        case .mule(let n): ("swsgi mule \(n)", 0)
        case .unconfigured: ("swsgi", 0)
        }
        writeStderr(encode(message, source: source, worker: worker, encoder: rt.options.logEncoder))
    }

    static func encode(_ message: String, source: String, worker: Int, encoder: LogEncoderOptions) -> String {
        let pid = getpid()
        switch encoder {
        case .plain:
            return "\(timestamp()) \(source) [pid \(pid)]: \(message)"
        case .json:
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            let micros = Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
            return "{\"time\":\"\(timestamp())\",\"unix\":\(ts.tv_sec),\"micros\":\(micros),\"pid\":\(pid),\"worker\":\(worker),"
                + "\"source\":\(jsonString(source)),\"msg\":\(jsonString(message))}"
        case .format(let template):
            let parts = (try? LogTemplate.parse(template, known: LogTemplate.serverVariables)) ?? []
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            let json = template.hasPrefix("{")
            return parts.map { part -> String in
                switch part {
                case .literal(let s): return s
                case .variable(let v):
                    let value: String = switch v {
                    case "msg": message
                    case "msgnl": message + "\n"
                    case "unix": "\(ts.tv_sec)"
                    case "micros": "\(Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000))"
                    case "pid": "\(pid)"
                    case "worker": "\(worker)"
                    default: timestamp()
                    }
                    return json ? jsonEscaped(value) : value
                }
            }.joined()
        }
    }
}

/// `"text"` with JSON escapes (Common's, one copy for both programs).
func jsonString(_ s: String) -> String { jsonQuoted(s) }
