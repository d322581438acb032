import Common
import Glibc
import Posix
import SWSGIConfig

/// The server's own log lines (not the request log), one write(2) each: plain
/// (`TIME swsgi master [pid N]: message`, or `DATE - swsgi master ...` with `--log-date`), or swsgi's
/// JSON object with `--log-encoder json`; then routed and encoded as the logging options say (LogRouter).
public enum ServerLog {
    public static func line(_ message: String) {
        let (source, worker) = origin
        let setup = LogRouter.shared.setup
        if setup.swsgiJSON {
            setup.server(json(message, source: source, worker: worker))
            return
        }
        setup.server("\(setup.datePrefix() ?? timestamp() + " ")\(source) [pid \(getpid())]: \(message)")
    }

    /// Text as uWSGI's uwsgi_log writes it (`print:` hooks): as it is, after `--log-date`'s prefix, through the router.
    static func raw(_ text: String) {
        let setup = LogRouter.shared.setup
        if setup.plain { setup.writeMain(text); return }
        if setup.swsgiJSON { line(text); return }
        setup.server((setup.date.map(logDatePrefix) ?? "") + text)
    }

    static var origin: (String, Int) {
        switch LogRouter.shared.role {
        case .master: ("swsgi master", 0)
        case .worker(let n): ("swsgi worker \(n)", n)
        case .mule(let n): ("swsgi mule \(n)", 0)
        case .starting: ("swsgi", 0)
        }
    }

    static var workerNumber: Int { origin.1 }

    static func json(_ message: String, source: String, worker: Int) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let micros = Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
        return "{\"time\":\"\(timestamp())\",\"unix\":\(ts.tv_sec),\"micros\":\(micros),\"pid\":\(getpid()),\"worker\":\(worker),"
            + "\"source\":\(jsonString(source)),\"msg\":\(jsonString(message))}"
    }
}

/// `"text"` with JSON escapes (Common's, one copy for both programs).
func jsonString(_ s: String) -> String { jsonQuoted(s) }
