import Glibc
import Posix
import ReloadCore

/// The --status-file document (also the control socket's `status` answer): hupwatch's pid, its control
/// socket, the live generations and the last 20 reloads.
func statusJSON(_ m: ReloadSupervisor, now: Instant, control: String) -> String {
    let gens = m.generations.map { g in
        "{\"generation\":\(g.number),\"pid\":\(g.pid),\"state\":\"\(stateName(g.phase))\",\"serving\":\(g.number == m.servingNumber),\"age_ms\":\((now - g.startedAt) / 1_000_000)}"
    }
    let reloads = m.reloads.map { r in
        "{\"id\":\(r.id),\"generation\":\(r.generation),\"outcome\":\"\(r.succeeded ? "succeeded" : "failed")\",\"reason\":\(jsonQuoted(r.reason)),\"duration_ms\":\(r.durationNanoseconds / 1_000_000)}"
    }
    return "{\"pid\":\(getpid()),\"control\":\(jsonQuoted(control)),\"stopping\":\(m.isStopping),\"current_generation\":\(m.servingNumber.map(String.init) ?? "null"),"
        + "\"generations\":[\(gens.joined(separator: ","))],\"last_reload\":\(reloads.last ?? "null"),"
        + "\"reloads\":[\(reloads.joined(separator: ","))]}\n"
}

/// What `hupwatch status` prints without --json.
func statusSummary(_ m: ReloadSupervisor, now: Instant) -> String {
    var lines: [String] = []
    let serving = m.serving
    if m.isStopping {
        lines.append("hupwatch \(getpid()): stopping")
    } else if let g = serving, g.phase == .ready {
        lines.append("hupwatch \(getpid()): generation \(g.number) serving (pid \(g.pid))")
    } else {
        lines.append("hupwatch \(getpid()): no ready generation serves")
    }
    for g in m.generations {
        lines.append("  generation \(g.number): pid \(g.pid), \(stateName(g.phase))\(g.number == m.servingNumber ? ", serving" : ""), up \(formatDuration(now - g.startedAt))")
    }
    for r in m.reloads.suffix(5) {
        lines.append("  reload \(r.id): generation \(r.generation) \(r.succeeded ? "succeeded" : "failed: \(r.reason)") in \(formatDuration(r.durationNanoseconds))")
    }
    return lines.joined(separator: "\n") + "\n"
}

/// The words the status file has always used for a generation's phase.
func stateName(_ phase: ReloadSupervisor.Phase) -> String {
    switch phase {
    case .starting, .publishing: return "starting"
    case .ready: return "ready"
    case .handingOver, .draining, .killed: return "draining"
    }
}
