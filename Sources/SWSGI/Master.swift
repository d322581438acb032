import Glibc
import Posix
import SWSGIConfig
import WorkerCore

/// The swsgi master: serves no requests. It forks the workers, carries out `WorkerPool`'s decisions,
/// answers the stats socket and speaks sd_notify. One thread, one blocking poll.
final class Master {
    let settings: ServerOptions
    let app: Application
    let listener: Listener
    var pool: WorkerPool
    let signals: SignalFD
    var timer: TimerFD
    let readyRead: Int32
    let readyWrite: Int32
    let scoreboard: Scoreboard
    let stats: StatsServer?
    let notifyAddress: String?
    let notifySender: Int32?
    let masterPID = getpid()
    var slotOfPID: [Int32: Int] = [:]
    var idOfPID: [Int32: Int] = [:]
    let startedAt = monotonicNanoseconds()

    static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD]

    init(settings: ServerOptions, app: @escaping Application, listener: Listener, environment env: [String]) throws {
        self.settings = settings
        self.app = app
        self.listener = listener
        pool = WorkerPool(config: .init(processes: settings.processes, mercyNanoseconds: settings.workerReloadMercyNanoseconds))
        signals = try SignalFD(Self.handledSignals)
        try ignoreSIGPIPE()
        timer = try TimerFD()
        let pipe = try makePipe(nonBlocking: true)
        (readyRead, readyWrite) = (pipe.read, pipe.write)
        scoreboard = try Scoreboard(capacity: settings.processes * 2 + 4)
        stats = try settings.statsSocket.map { try StatsServer(path: $0) }
        notifyAddress = lookup("NOTIFY_SOCKET", in: env)
        notifySender = notifyAddress != nil ? try UnixSocket.datagram().release() : nil
    }

    func log(_ message: String) {
        writeStderr("\(timestamp()) swsgi master [pid \(masterPID)]: \(message)")
    }

    func run() -> Int32 {
        log("listening on \(listener.description); \(settings.processes) workers, app \(settings.appLibrary ?? settings.effectiveApp.description)")
        if let code = execute(pool.handle(.started, now: monotonicNanoseconds())) { return code }
        while true {
            do {
                try timer.arm(at: pool.nextDeadline)
                var fds = [signals.fd.raw, timer.fd.raw, readyRead]
                if let s = stats { fds.append(s.fd) }
                let ready = Set(try waitReadable(fds))
                if ready.contains(0) {
                    while let (sig, _) = try signals.next() { if let code = execute(events(for: sig)) { return code } }
                }
                if ready.contains(1) { timer.acknowledge() }
                if ready.contains(2) {
                    for pid in readyPIDs() { if let code = execute(pool.handle(.workerReady(pid: pid), now: monotonicNanoseconds())) { return code } }
                }
                if ready.contains(3), let s = stats { s.answer(statsSnapshot()) }
                if let d = pool.nextDeadline, d <= monotonicNanoseconds() {
                    if let code = execute(pool.handle(.deadlinePassed, now: monotonicNanoseconds())) { return code }
                }
            } catch {
                log("\(error)")
                return 1
            }
        }
    }

    private func readyPIDs() -> [Int32] {
        var out: [Int32] = []
        var pid: Int32 = 0
        while withUnsafeMutableBytes(of: &pid, { Glibc.read(readyRead, $0.baseAddress, 4) }) == 4 { out.append(pid) }
        return out
    }

    private func events(for sig: Int32) -> [WorkerPool.Action] {
        let now = monotonicNanoseconds()
        switch sig {
        case SIGTERM:
            // Stop new clients finding us first; what is already queued is still served.
            listener.vacuum()
            return pool.handle(.gracefulStop, now: now)
        case SIGINT, SIGQUIT: return pool.handle(.immediateStop, now: now)
        case SIGHUP: return pool.handle(.reloadWorkers, now: now)
        case SIGTTIN: return pool.handle(.addWorker, now: now)
        case SIGTTOU: return pool.handle(.removeWorker, now: now)
        case SIGCHLD:
            var actions: [WorkerPool.Action] = []
            for (pid, status) in (try? reapChildren()) ?? [] {
                if let slot = slotOfPID.removeValue(forKey: pid) { scoreboard.release(slot) }
                idOfPID[pid] = nil
                let end: WorkerEnd = switch status {
                case .exited(let c): .exited(c)
                case .signaled(let s): .signaled(s)
                }
                actions += pool.handle(.workerExited(pid: pid, status: end), now: now)
            }
            return actions
        default: return []
        }
    }

    private func execute(_ actions: [WorkerPool.Action]) -> Int32? {
        var queue = actions[...]
        while let a = queue.popFirst() {
            switch a {
            case .fork(let id):
                queue = (forkWorker(id: id) + queue)[...]
            case .signal(let sig, let pid):
                _ = try? sendSignal(sig, to: pid)
            case .kill(let pid):
                _ = try? sendSignal(SIGKILL, to: pid)
            case .log(let m):
                log(m)
            case .notify(let text):
                if let addr = notifyAddress, let fd = notifySender {
                    var msg = text
                    if text.hasPrefix("READY=1") && !readyLogged {
                        readyLogged = true
                        log("ready in \((monotonicNanoseconds() - startedAt) / 1_000_000) ms")
                    }
                    if text.hasPrefix("RELOADING=1") { msg += "\nMONOTONIC_USEC=\(monotonicNanoseconds() / 1000)" }
                    try? UnixSocket.send(datagram: msg, to: addr, from: fd)
                }
            case .statusChanged:
                break
            case .exit(let code):
                listener.vacuum()
                if let p = settings.pidFile { unlink(p) }
                log("exiting with status \(code)")
                return code
            }
        }
        return nil
    }

    private var readyLogged = false

    private func forkWorker(id: Int) -> [WorkerPool.Action] {
        let now = monotonicNanoseconds()
        let respawns = pool.slots.filter { $0.id == id }.map(\.respawns).max() ?? 0
        guard let slot = scoreboard.allocate(workerID: id, respawns: respawns) else {
            return pool.handle(.forkFailed(id: id, reason: "no free scoreboard slot"), now: now)
        }
        let pid = fork()
        if pid < 0 {
            scoreboard.release(slot)
            return pool.handle(.forkFailed(id: id, reason: errnoText(errno)), now: now)
        }
        if pid == 0 { becomeWorker(id: id, slot: slot) }
        scoreboard.set(slot, .pid, Int64(pid))
        slotOfPID[pid] = slot
        idOfPID[pid] = id
        return pool.handle(.forked(id: id, pid: pid), now: now)
    }

    /// Runs in the forked child: drop the master's fds and signal state, then serve.
    private func becomeWorker(id: Int, slot: Int) -> Never {
        close(signals.fd.raw)
        close(timer.fd.raw)
        close(readyRead)
        if let s = stats { close(s.fd) }
        if let n = notifySender { close(n) }
        // The master's blocked set is inherited across fork; the worker blocks only what it reads.
        try? SignalSet(Self.handledSignals).unblock()
        _ = setParentDeathSignal(SIGKILL)
        if getppid() != masterPID { exit(0) }
        setProcessTitle("\(settings.procnamePrefix)swsgi worker \(id)")
        scoreboard.set(slot, .pid, Int64(getpid()))
        let ctx = WorkerContext(id: id, slot: slot, listener: listener.fd, remoteLabel: listener.isUnix ? "unix" : "tcp",
                                scoreboard: scoreboard, settings: settings, app: app, readyFD: readyWrite)
        do {
            try Worker(ctx).run()
        } catch {
            writeStderr("swsgi worker \(id): \(error)")
            exit(1)
        }
    }

    func statsSnapshot() -> StatsSnapshot {
        let workers = pool.slots.map { w -> StatsSnapshot.WorkerStats in
            let i = slotOfPID[w.pid]
            let busy = i.map { scoreboard.get($0, .state) == Scoreboard.State.busy.rawValue } ?? false
            let started = i.map { UInt64(scoreboard.get($0, .requestStartNanos)) } ?? 0
            return .init(id: w.id, pid: w.pid, state: w.state == .retiring ? "retiring" : (busy ? "busy" : "idle"),
                         requests: i.map { Int(scoreboard.get($0, .requests)) } ?? 0,
                         runningRequest: busy ? i.map(scoreboard.request) : nil,
                         runningForMilliseconds: busy ? (monotonicNanoseconds() - min(started, monotonicNanoseconds())) / 1_000_000 : nil,
                         respawns: w.respawns, harakiris: i.map { Int(scoreboard.get($0, .harakiris)) } ?? 0,
                         rssBytes: residentBytes(pid: w.pid))
        }
        let queue = listener.isUnix ? try? UnixSocket.listenQueue(inode: listener.inode) : nil
        return StatsSnapshot(masterPID: masterPID, listenQueue: queue?.queued, listenQueueMax: queue?.backlog, workers: workers)
    }
}
