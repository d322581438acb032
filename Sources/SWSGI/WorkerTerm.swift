import CGlibcShim
import Posix

/// A worker's SIGTERM: harakiri's graceful signal for the request in hand runs the app's handler as it
/// always did; any other TERM (systemd's group TERM, an operator's kill) is a stop request the event loop
/// reads from a pipe. The C handler tells them apart by the scoreboard mark the master sets before
/// signalling a harakiri (`Scoreboard.Field.harakiriFiredFor`).
enum WorkerTerm {
    /// Installed right after fork (so a TERM during --lazy-apps' import is kept, not fatal) and again once
    /// the app is loaded, when the TERM handler the app or harakiri set up is taken as harakiri's.
    static func install(notifyFD: Int32, scoreboard: Scoreboard, slot: Int, chainHarakiri: Bool) throws {
        let mark = chainHarakiri ? UnsafePointer(scoreboard.cell(slot, .harakiriFiredFor)) : nil
        let request = chainHarakiri ? UnsafePointer(scoreboard.cell(slot, .requestCounter)) : nil
        try syscall("sigaction", "SIGTERM") { shim_worker_term_install(notifyFD, mark, request, chainHarakiri ? 1 : 0) }
    }

    /// A stop-TERM has arrived (no syscall: read on the request path).
    static var arrived: Bool { shim_worker_term_arrived() != 0 }
}
