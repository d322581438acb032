import Glibc
import Posix
import ReloadCore

/// The --status-file document: hupwatch's pid, the live generations and the last reload.
func statusJSON(_ m: ReloadSupervisor, now: Instant) -> String {
    func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out += c.value < 0x20 ? "?" : String(c)
            }
        }
        return out + "\""
    }
    let gens = m.generations.map { g in
        "{\"generation\":\(g.number),\"pid\":\(g.pid),\"state\":\"\(g.state.rawValue)\",\"serving\":\(g.number == m.currentNumber),\"age_ms\":\((now - g.startedAt) / 1_000_000)}"
    }
    var last = "null"
    if let r = m.lastReload {
        last = "{\"generation\":\(r.generation),\"outcome\":\"\(r.succeeded ? "succeeded" : "failed")\",\"reason\":\(quoted(r.reason)),\"duration_ms\":\(r.durationNanoseconds / 1_000_000)}"
    }
    return "{\"pid\":\(getpid()),\"stopping\":\(m.stopping),\"current_generation\":\(m.currentNumber.map(String.init) ?? "null"),"
        + "\"generations\":[\(gens.joined(separator: ","))],\"last_reload\":\(last)}\n"
}
