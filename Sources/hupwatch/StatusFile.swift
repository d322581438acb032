import Glibc
import Posix
import ReloadCore

/// The --status-file document: hupwatch's pid, the live generations and the last reloads.
func statusJSON(_ m: ReloadSupervisor, now: Instant) -> String {
    let gens = m.generations.map { g in
        "{\"generation\":\(g.number),\"pid\":\(g.pid),\"state\":\"\(stateName(g.phase))\",\"serving\":\(g.number == m.servingNumber),\"age_ms\":\((now - g.startedAt) / 1_000_000)}"
    }
    let reloads = m.reloads.map { r in
        "{\"generation\":\(r.generation),\"outcome\":\"\(r.succeeded ? "succeeded" : "failed")\",\"reason\":\(jsonQuoted(r.reason)),\"duration_ms\":\(r.durationNanoseconds / 1_000_000)}"
    }
    return "{\"pid\":\(getpid()),\"stopping\":\(m.isStopping),\"current_generation\":\(m.servingNumber.map(String.init) ?? "null"),"
        + "\"generations\":[\(gens.joined(separator: ","))],\"last_reload\":\(reloads.last ?? "null"),"
        + "\"reloads\":[\(reloads.joined(separator: ","))]}\n"
}

/// The words the status file has always used for a generation's phase.
func stateName(_ phase: ReloadSupervisor.Phase) -> String {
    switch phase {
    case .starting: return "starting"
    case .ready: return "ready"
    case .handingOver, .draining, .killed: return "draining"
    }
}
