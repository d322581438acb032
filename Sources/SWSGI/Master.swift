import Glibc
import Posix
import SWSGIConfig
import WorkerCore

/// The swsgi master: serves no requests. It forks the workers, carries out `WorkerPool`'s decisions,
/// answers the stats socket and speaks sd_notify. One thread on the shared `Reactor`: one event at a time.
final class Master {
    let settings: ServerOptions
    let app: Application
    let harakiriHandler: HarakiriHandler?
    /// An app with a runtime to keep right across fork (Python); nil for Swift apps.
    let host: HostedApplication?
    /// Every listener the workers accept on (`Listener.openAll`).
    let listeners: [Listener]
    var pool: WorkerPool
    let reactor: Reactor
    /// Stats clients currently watched by the reactor.
    var watchedStatsClients: Set<Int32> = []
    let readyRead: Int32
    let readyWrite: Int32
    let scoreboard: Scoreboard
    let stats: StatsServer?
    /// Timers, signals to workers and mules, the mules themselves (see MasterServices).
    let services: MasterServices
    let notifier: SdNotifier?
    let masterPID = getpid()
    var slotOfPID: [Int32: Int] = [:]
    var idOfPID: [Int32: Int] = [:]
    /// Each worker's harakiri timerfd (shared with it across fork).
    var harakiriFDs: [Int32: Int32] = [:]
    var harakiriCount: [Int: Int] = [:]
    let startedAt = monotonicNanoseconds()
    /// Periodic checks exist only when asked for: --evil-reload-on-rss (every second) and
    /// cheaper (every --cheaper-overload). Without them an idle master never wakes.
    var nextPeriodicAt: Instant?
    var nextEvilCheckAt: Instant?
    var nextCheaperCycleAt: Instant?
    var lastBusy: [Int32: Int64] = [:]
    var lastCycleAt: Instant = 0

    static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD, SIGUSR1]
    /// Master-only signals a worker must not inherit blocked. HUP, INT, QUIT and USR1 stay blocked across
    /// fork: they are the worker protocol, and a signal arriving before the worker's signalfd exists
    /// must wait for it rather than kill the worker by its default action.
    static let masterOnlySignals: [Int32] = [SIGTERM, SIGTTIN, SIGTTOU, SIGCHLD]

    /// App code run in the master (a Python app's import, its at-fork hooks) may have changed the handled
    /// signals' dispositions: SIGCHLD set to SIG_IGN makes the kernel reap workers behind the master's back.
    /// `inherited`: those already off the default when swsgi started (`nohup`, a shell's `&`): restored
    /// too, but they are not the app's doing, so they get no warning.
    static func restoreSignalDispositions(inherited: [Int32] = []) throws {
        for sig in try restoreDefaultDispositions(handledSignals) where !inherited.contains(sig) {
            ServerLog.line("warning: the app changed the master's \(SignalName.name(sig)) disposition; restored to the default (the master watches workers and stops through it)")
        }
    }

    init(settings: ServerOptions, app: @escaping Application, harakiriHandler: HarakiriHandler?, listeners: [Listener],
         stats: StatsServer?, services: MasterServices, environment env: [String], host: HostedApplication? = nil) throws {
        self.settings = settings
        self.services = services
        self.host = host
        self.app = app
        self.harakiriHandler = harakiriHandler
        self.listeners = listeners
        var config = WorkerPool.Config(processes: settings.processes, mercyNanoseconds: settings.workerReloadMercyNanoseconds)
        config.harakiriGracefulNanoseconds = settings.harakiriGracefulTimeoutNanoseconds
        config.harakiriGracefulSignal = settings.harakiriGracefulSignal
        config.harakiriQueueThreshold = settings.harakiriGracefulQueueThreshold
        config.maxLifetimeNanoseconds = settings.maxWorkerLifetimeNanoseconds
        config.lifetimeDeltaNanoseconds = settings.maxWorkerLifetimeDeltaNanoseconds
        config.workersLoadTheApp = host != nil && settings.python.importsAppInWorkers
        config.evilRSSLimitBytes = settings.evilReloadOnRSSMiB << 20  // bounded by the option's MiB range
        config.evilAddressSpaceLimitBytes = settings.process.evilReloadOnAddressSpaceMiB << 20
        if settings.cheaper > 0 {
            config.minimumWorkers = settings.cheaper
            config.initialWorkers = max(settings.effectiveCheaperInitial, settings.cheaper)
            config.cheaper = CheaperBusyness.Config(
                minimumWorkers: settings.cheaper, maximumWorkers: settings.processes, step: settings.cheaperStep,
                busynessMin: settings.cheaperBusynessMin, busynessMax: settings.cheaperBusynessMax,
                multiplier: settings.cheaperBusynessMultiplier, backlogAlert: settings.cheaperBusynessBacklogAlert,
                backlogStep: settings.cheaperBusynessBacklogStep, rssSoftBytes: settings.cheaperRSSLimitSoftBytes,
                rssHardBytes: settings.cheaperRSSLimitHardBytes)
        }
        pool = WorkerPool(config: config)
        reactor = try Reactor(signals: Self.handledSignals)
        try ignoreSIGPIPE()
        let pipe = try makePipe(nonBlocking: true)
        (readyRead, readyWrite) = (pipe.read, pipe.write)
        try reactor.watch(readyRead, token: Token.workerMessages)
        if let stats { try reactor.watch(stats.fd, token: Token.stats) }
        try reactor.watch(services.notifyFD, token: Token.services)
        touchReload = try ChangeWatch(paths: settings.touchReload, label: "touch-reload")
        if let t = touchReload { try reactor.watch(t.fd, token: Token.touchReload) }
        commands = try MasterCommands(settings, environment: env)
        fifo = try settings.masterFifo.map { try MasterFifo(path: $0) }
        if let f = fifo {
            try reactor.watch(f.fd, token: Token.masterFifo)
            if f.replacedLiveFifo {
                ServerLog.line("--master-fifo \(f.path): another process was reading this FIFO (an older generation, or another server given the same path): replaced, as uWSGI does; that process gets no more commands")
            }
        }
        touchChainReload = try ChangeWatch(paths: settings.touchChainReload, label: "touch-chain-reload")
        if let t = touchChainReload { try reactor.watch(t.fd, token: Token.touchChainReload) }
        scoreboard = try Scoreboard(capacity: pool.scoreboardCapacity, threads: settings.python.threads)
        self.stats = stats
        notifier = try SdNotifier(environment: env)
    }

    /// Repeated trouble lines of one kind (a fork failing for every worker: `WorkerPool.Action.report`) are
    /// counted, not each written; lifecycle lines (reloads, recycling) are always written.
    var repeatedLines = RepeatedLineFilter()

    func log(_ message: String) { ServerLog.line(message) }

    /// --touch-reload's watch (nil without the option).
    var touchReload: ChangeWatch? = nil
    /// --attach-daemon and --cron commands.
    var commands: MasterCommands!
    /// --master-fifo (nil without the option).
    var fifo: MasterFifo? = nil
    /// --touch-chain-reload's watch (nil without the option).
    var touchChainReload: ChangeWatch? = nil
    /// A touch waiting for its burst to end: one save is several inotify events (a create, a write, a
    /// rename), and a directory watched whole sees each; the reload starts `touchSettleNanoseconds` after
    /// the first, once. `chain`: every change in the burst was a touch-chain-reload path.
    var touchPending: (chain: Bool, path: String, at: Instant)? = nil
    static let touchSettleNanoseconds: UInt64 = 100_000_000

    /// A watched path changed: the reload waits for the burst to end (a plain reload wins over a chain).
    private func touched(_ path: String, chain: Bool) {
        if let p = touchPending {
            touchPending = (p.chain && chain, p.path, p.at)
        } else {
            touchPending = (chain, path, monotonicNanoseconds() + Self.touchSettleNanoseconds)
        }
    }

    /// The burst is over: one reload for it.
    private func touchSettled(now: Instant) -> Int32? {
        guard let p = touchPending, p.at <= now else { return nil }
        touchPending = nil
        if p.chain {
            log("touch-chain-reload: \(p.path) changed")
            return execute(pool.handle(.chainReload, now: now))
        }
        // The same graceful reload as SIGHUP: replacements first, then the old workers finish.
        log("touch-reload: \(p.path) changed")
        return execute(events(for: SIGHUP))
    }

    func run() -> Int32 {
        log("listening on \(listeners.map(\.description).joined(separator: ", ")); \(settings.processes) workers, app \(host?.description ?? settings.appLibrary ?? settings.effectiveApp.description)")
        if host != nil, !settings.python.importsAppInWorkers, touchReload != nil || touchChainReload != nil {
            log("note: touch-reload/touch-chain-reload replace the workers by forking the master, which imported the app at start: they run the Python code loaded then. For changed code set lazy-apps = true (each worker imports the app) or reload through hupwatch")
        }
        let now0 = monotonicNanoseconds()
        lastCycleAt = now0
        if pool.config.evilRSSLimitBytes > 0 || pool.config.evilAddressSpaceLimitBytes > 0 { nextEvilCheckAt = now0 + pool.config.rssSampleNanoseconds }
        if pool.config.cheaper != nil { nextCheaperCycleAt = now0 + settings.cheaperOverloadNanoseconds }
        // A mule serves no requests: it drops the listener too.
        services.startMules(closeMasterFDs: { [unowned self] in
            self.closeMasterFDs()
            for l in self.listeners { close(l.fd) }
        })
        if let code = execute(pool.handle(.started, now: now0)) { return code }
        if commands.start() != nil, let code = execute(events(for: SIGTERM)) { return code }
        while true {
            do {
                try watchStatsClients()
                try reactor.setDeadline([pool.nextDeadline, nextEvilCheckAt, nextCheaperCycleAt, stats?.nextDeadline,
                                         services.nextDeadline, repeatedLines.nextFlush, touchPending?.at, commands.nextDeadline].compactMap { $0 }.min())
                if let code = handle(try reactor.next()) { return code }
            } catch {
                log("\(error)")
                return ExitCode.failure
            }
        }
    }

    /// Reactor tokens: fixed ones, then a range keyed by worker pid (harakiri timers) and one by fd (stats clients).
    enum Token {
        static let workerMessages: UInt64 = 1
        static let stats: UInt64 = 2
        /// A worker, a mule or a thread of the app added a timer after the set-up (MasterServices).
        static let services: UInt64 = 3
        /// A --touch-reload path changed.
        static let touchReload: UInt64 = 4
        /// A --touch-chain-reload path changed.
        static let touchChainReload: UInt64 = 5
        /// Bytes written to --master-fifo.
        static let masterFifo: UInt64 = 6
        static let harakiriBase: UInt64 = 1 << 32
        static let statsClientBase: UInt64 = 2 << 32
    }

    /// One event from the reactor, carried out before the next is read.
    private func handle(_ event: Reactor.Event) -> Int32? {
        switch event {
        case .signal(let sig, _):
            return execute(events(for: sig))
        case .childExited(let pid, let status):
            if services.childExited(pid: pid, status: "\(status)") { return nil }
            var stop: String? = nil
            if commands.childExited(pid, status: status, stop: &stop) {
                // A control daemon died (attach-control-daemon): the server stops, gracefully.
                return stop == nil ? nil : execute(events(for: SIGTERM))
            }
            // What the worker wrote before it exited (its TERM, a recycle request) comes first: the reactor
            // reaps before it reports the pipe readable.
            if let code = readWorkerMessages() { return code }
            return execute(workerExited(pid, status: status))
        case .deadline:
            let now = monotonicNanoseconds()
            for line in repeatedLines.flush(now: now) { ServerLog.line(line) }
            stats?.answerDue(readable: [], now: now, snapshot: statsSnapshot)
            if let code = execute(periodicChecks(now: now)) { return code }
            services.deadlinePassed()
            if let d = commands.nextDeadline, d <= now, commands.deadlinePassed() != nil, let code = execute(events(for: SIGTERM)) { return code }
            if let code = touchSettled(now: now) { return code }
            if let d = pool.nextDeadline, d <= now { return execute(pool.handle(.deadlinePassed, now: now)) }
            return nil
        case .readable(let token, _):
            switch token {
            case Token.workerMessages:
                return readWorkerMessages()
            case Token.stats:
                stats?.acceptClients(now: monotonicNanoseconds())
            case Token.services:
                services.notified()
            case Token.masterFifo:
                for command in fifo?.commands() ?? [] {
                    if let code = execute(fifoCommand(command)) { return code }
                }
            case Token.touchReload:
                if let changed = touchReload?.changed() { touched(changed, chain: false) }
            case Token.touchChainReload:
                if let changed = touchChainReload?.changed() { touched(changed, chain: true) }
            case Token.statsClientBase...:
                stats?.answerDue(readable: [Int32(token - Token.statsClientBase)], now: monotonicNanoseconds(), snapshot: statsSnapshot)
            case Token.harakiriBase...:
                let pid = Int32(token - Token.harakiriBase)
                if let fd = harakiriFDs[pid] { SharedTimer.acknowledge(fd) }
                return execute(checkHarakiri(pid))
            default: break
            }
            return nil
        }
    }

    /// The workers' messages waiting in the pipe, each handed to the pool in order.
    private func readWorkerMessages() -> Int32? {
        for (pid, message) in workerMessages() {
            let event: WorkerPool.Event = switch message {
            case .ready: .workerReady(pid: pid)
            case .recycleMaxRequests: .recycle(pid: pid, reason: .maxRequests)
            case .recycleRSS: .recycle(pid: pid, reason: .rss)
            case .recycleAddressSpace: .recycle(pid: pid, reason: .addressSpace)
            case .recycleException: .recycle(pid: pid, reason: .exception)
            case .recycleListenerLost: .recycle(pid: pid, reason: .listenerLost)
            case .gotTERM: .workerGotTERM(pid: pid)
            case .sourceChanged: .sourceChanged(pid: pid)
            }
            let now = monotonicNanoseconds()
            var actions = pool.handle(event, now: now)
            // Its size as it becomes ready, before it can have taken a request: a limit below a fresh worker's
            // size is seen as such even when a busy listen queue hands it a request at once.
            if case .workerReady = event, nextEvilCheckAt != nil {
                let rss = pool.config.evilRSSLimitBytes > 0 ? residentBytes(pid: pid) : nil
                let vsz = pool.config.evilAddressSpaceLimitBytes > 0 ? addressSpaceBytes(pid: pid) : nil
                actions += pool.handle(.freshSizeSampled(pid: pid, rssBytes: rss, addressSpaceBytes: vsz), now: now)
            }
            if let code = execute(actions) { return code }
        }
        return nil
    }

    /// Keeps the reactor watching exactly the stats clients still waiting for an answer.
    private func watchStatsClients() throws {
        let pending = Set(stats?.pending.map(\.fd) ?? [])
        for fd in watchedStatsClients.subtracting(pending) {
            // Answered and closed: closing already took it out of epoll.
            watchedStatsClients.remove(fd)
        }
        for fd in pending.subtracting(watchedStatsClients) {
            try reactor.watch(fd, token: Token.statsClientBase + UInt64(fd))
            watchedStatsClients.insert(fd)
        }
    }

    private func workerMessages() -> [(Int32, WorkerMessage)] {
        var out: [(Int32, WorkerMessage)] = []
        var record: (Int32, Int32) = (0, 0)
        while withUnsafeMutableBytes(of: &record, { Glibc.read(readyRead, $0.baseAddress, 8) }) == 8 {
            if let m = WorkerMessage(rawValue: record.1) { out.append((record.0, m)) }
        }
        return out
    }

    /// The listen queue as the kernel reports it (sock_diag for Unix sockets, TCP_INFO for TCP): summed over
    /// the listeners (every worker accepts from all of them), nil when the kernel tells nothing of any.
    func listenQueue() -> (queued: Int, backlog: Int)? {
        let each = listeners.compactMap { Self.listenQueue(of: $0) }
        guard !each.isEmpty else { return nil }
        return (each.map(\.queued).reduce(0, +), each.map(\.backlog).reduce(0, +))
    }

    static func listenQueue(of l: Listener) -> (queued: Int, backlog: Int)? {
        l.isUnix ? try? UnixSocket.listenQueue(inode: l.inode) : tcpListenQueue(l.fd)
    }

    /// A worker's harakiri timer fired (or a held harakiri is due another look): confirm from the
    /// scoreboard that the same request is still running past its deadline.
    private func checkHarakiri(_ pid: Int32) -> [WorkerPool.Action] {
        guard let slot = slotOfPID[pid] else { return [] }
        let now = monotonicNanoseconds()
        let deadline = scoreboard.get(slot, .harakiriDeadline)
        guard scoreboard.get(slot, .state) == Scoreboard.State.busy.rawValue, deadline > 0, UInt64(deadline) <= now + 1_000_000 else { return [] }
        let started = UInt64(scoreboard.get(slot, .requestStartNanos))
        let queue = settings.harakiriGracefulQueueThreshold > 0 ? listenQueue()?.queued : nil
        return pool.handle(.harakiriExpired(pid: pid, request: scoreboard.request(slot), ageNanoseconds: now - min(started, now),
                                            listenQueue: queue), now: now)
    }

    /// One worker's --evil-reload-on-rss / -as sample. Its scoreboard's request number is read first: a worker
    /// that had not started a request then was over the limit before any (it cannot grow that much in the
    /// microseconds between the reads), which the pool tells from growth in a request.
    private func evilSample(_ pid: Int32, now: Instant) -> [WorkerPool.Action] {
        let took = slotOfPID[pid].map { scoreboard.get($0, .requestCounter) > 0 } ?? false
        var actions: [WorkerPool.Action] = []
        if pool.config.evilRSSLimitBytes > 0, let rss = residentBytes(pid: pid) {
            actions += pool.handle(.rssSampled(pid: pid, bytes: rss, tookRequest: took), now: now)
        }
        if pool.config.evilAddressSpaceLimitBytes > 0, let vsz = addressSpaceBytes(pid: pid) {
            actions += pool.handle(.addressSpaceSampled(pid: pid, bytes: vsz, tookRequest: took), now: now)
        }
        return actions
    }

    /// The samples the pool decides from: --evil-reload-on-rss's RSS (every `rssSampleNanoseconds`) and
    /// cheaper's busyness (every --cheaper-overload).
    private func periodicChecks(now: Instant) -> [WorkerPool.Action] {
        var actions: [WorkerPool.Action] = []
        if let at = nextEvilCheckAt, at <= now {
            nextEvilCheckAt = now + pool.config.rssSampleNanoseconds
            for w in pool.slots { actions += evilSample(w.pid, now: now) }
        }
        if let at = nextCheaperCycleAt, at <= now {
            nextCheaperCycleAt = now + settings.cheaperOverloadNanoseconds
            let active = pool.slots.filter { $0.state != .retiring }
            var busy: Int64 = 0
            var rss = 0
            for w in active {
                guard let slot = slotOfPID[w.pid] else { continue }
                let total = scoreboard.get(slot, .busyNanos) + scoreboard.busyInProgressNanos(slot, now: now)
                busy += max(0, total - (lastBusy[w.pid] ?? 0))
                lastBusy[w.pid] = total
                rss += residentBytes(pid: w.pid) ?? 0
            }
            let span = Double(now - lastCycleAt) * Double(max(1, active.count))
            lastCycleAt = now
            let percent = span > 0 ? Double(busy) / span * 100 : 0
            actions += pool.handle(.busySampled(busyPercent: percent, listenQueue: listenQueue()?.queued, totalRSSBytes: rss), now: now)
        }
        return actions
    }

    /// One --master-fifo command: the same decision as the signal it stands for.
    private func fifoCommand(_ command: MasterFifoCommand) -> [WorkerPool.Action] {
        switch command {
        case .reload(let letter):
            log("master-fifo: '\(letter)': graceful reload of the workers")
            return events(for: SIGHUP)
        case .gracefulStop:
            log("master-fifo: 'q': graceful stop")
            return events(for: SIGTERM)
        case .immediateStop:
            log("master-fifo: 'Q': immediate stop")
            return events(for: SIGINT)
        case .addWorker: return events(for: SIGTTIN)
        case .removeWorker: return events(for: SIGTTOU)
        case .reopenLog:
            do { try LogTarget.reopen(settings) } catch { log("master-fifo: 'l': \(error)") }
        case .logStats:
            log("master-fifo: 's': " + String(statsSnapshot().json().split(separator: "\n").joined()))
        case .rewritePidFile:
            if let p = settings.pidFile {
                do { try writeFileSafely(p, "\(getpid())\n") } catch { log("master-fifo: 'P': --pid-file \(p): \(error)") }
            }
        case .nothing: break
        case .unsupported(let why):
            log("master-fifo: \(why); ignored")
        }
        return []
    }

    private func events(for sig: Int32) -> [WorkerPool.Action] {
        let now = monotonicNanoseconds()
        switch sig {
        case SIGTERM:
            // Stop new clients finding us first; what is already queued is still served.
            for l in listeners { l.vacuum() }
            return pool.handle(.gracefulStop, now: now)
        case SIGINT, SIGQUIT: return pool.handle(.immediateStop, now: now)
        case SIGHUP:
            // --log-reopen: the new generation (and the master) write to the file at the path now.
            if settings.logReopen { do { try LogTarget.reopen(settings) } catch { log("--log-reopen: \(error)") } }
            services.reloadMules()
            commands.reload()
            return pool.handle(.reloadWorkers, now: now)
        case SIGTTIN: return pool.handle(.addWorker, now: now)
        case SIGTTOU: return pool.handle(.removeWorker, now: now)
        default: return []
        }
    }

    /// One reaped worker: its slot, harakiri timer and bookkeeping go with it.
    private func workerExited(_ pid: Int32, status: ProcessEnd) -> [WorkerPool.Action] {
        if let slot = slotOfPID.removeValue(forKey: pid) { scoreboard.release(slot) }
        if let fd = harakiriFDs.removeValue(forKey: pid) {
            reactor.unwatch(fd, token: Token.harakiriBase + UInt64(UInt32(bitPattern: pid)))
            close(fd)
        }
        idOfPID[pid] = nil
        lastBusy[pid] = nil
        // A worker that cannot load the app stops swsgi (the pool's boot-failure policy), as uWSGI's
        // --need-app does, rather than respawning into the same traceback forever.
        let event: WorkerPool.Event = status == .exited(ExitCode.appLoadFailed)
            ? .appLoadFailed(pid: pid, status: status) : .workerExited(pid: pid, status: status)
        return pool.handle(event, now: monotonicNanoseconds())
    }

    private func execute(_ actions: [WorkerPool.Action]) -> Int32? {
        var queue = actions[...]
        while let a = queue.popFirst() {
            switch a {
            case .fork(let id):
                queue = (forkWorker(id: id) + queue)[...]
            case .signal(let sig, let pid):
                // The kill deadline first: the worker may read it as soon as the signal arrives.
                if let row = slotOfPID[pid], let killAt = pool.slot(pid: pid)?.killDeadline {
                    scoreboard.set(row, .killDeadline, Int64(clamping: killAt))
                }
                _ = try? sendSignal(sig, to: pid)
            case .kill(let pid):
                _ = try? sendSignal(SIGKILL, to: pid)
            case .log(let m):
                log(m)
            case .report(let kind, let m):
                for line in repeatedLines.admit(m, kind: kind.rawValue, now: monotonicNanoseconds()) { log(line) }
            case .notify(let text):
                if let notifier {
                    if text.hasPrefix("READY=1") && !readyLogged {
                        readyLogged = true
                        log("ready in \((monotonicNanoseconds() - startedAt) / 1_000_000) ms")
                    }
                    // Best effort, as sd_notify(3) is: hupwatch stops reading a generation's socket once it is ready.
                    try? notifier.send(text)
                }
            case .statusChanged:
                break
            case .checkHarakiri(let pid):
                queue = (checkHarakiri(pid) + queue)[...]
            case .recordHarakiri(let pid):
                if let id = idOfPID[pid] { harakiriCount[id, default: 0] += 1 }
                if let slot = slotOfPID[pid] { scoreboard.set(slot, .harakiriFiredFor, scoreboard.get(slot, .requestCounter)) }
            case .exit(let code):
                services.stopMules()
                commands.stopAll(reactor: reactor)
                for l in listeners { l.vacuum() }
                if settings.vacuum {
                    fifo?.remove()
                    if let p = settings.pidFile { removePidFileIfOurs(p, pid: getpid()) }
                }
                // Lines still being counted (14 workers killed at once, then a stop within the window) are told.
                for line in repeatedLines.flushAll(now: monotonicNanoseconds()) { ServerLog.line(line) }
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
        // The pool reserved this row when it decided the fork: rows are its bounded table, not ours.
        guard let slot = pool.scoreboardIndex(forFork: id), slot < scoreboard.capacity else {
            return pool.handle(.forkFailed(id: id, reason: "no scoreboard row reserved (a bug)"), now: now)
        }
        scoreboard.reset(slot, workerID: id, respawns: respawns)
        var harakiriFD: Int32 = -1
        if settings.harakiriNanoseconds > 0 {
            do { harakiriFD = try SharedTimer.create() } catch {
                scoreboard.release(slot)
                return pool.handle(.forkFailed(id: id, reason: "\(error)"), now: now)
            }
        }
        host?.prepareFork()
        let pid = fork()
        if pid != 0, let host {
            host.parentAfterFork()
            try? Self.restoreSignalDispositions()
        }
        if pid < 0 {
            let e = errno
            scoreboard.release(slot)
            if harakiriFD >= 0 { close(harakiriFD) }
            return pool.handle(.forkFailed(id: id, reason: errnoText(e)), now: now)
        }
        if pid == 0 { becomeWorker(id: id, slot: slot, harakiriFD: harakiriFD) }
        if harakiriFD >= 0 {
            harakiriFDs[pid] = harakiriFD
            do { try reactor.watch(harakiriFD, token: Token.harakiriBase + UInt64(UInt32(bitPattern: pid))) } catch { log("\(error)") }
        }
        scoreboard.set(slot, .pid, Int64(pid))
        slotOfPID[pid] = slot
        idOfPID[pid] = id
        return pool.handle(.forked(id: id, pid: pid), now: now)
    }

    /// Runs in the forked child: drop the master's fds and signal state, then serve.
    private func becomeWorker(id: Int, slot: Int, harakiriFD: Int32) -> Never {
        host?.childAfterFork()
        closeMasterFDs()
        let workerServices = WorkerServices.enter(setup: services.setup, role: .worker(id), registrations: services.registrations.snapshotAfterFork())
        workerServices.runPostForkHooks()
        // The master's blocked set is inherited across fork; the worker blocks only what it reads.
        try? SignalSet(Self.masterOnlySignals).unblock()
        _ = setParentDeathSignal(SIGKILL)
        if getppid() != masterPID { _exit(0) }
        setProcessTitle(settings.processTitle("swsgi worker \(id)"))
        do {
            if let line = try ProcessLimits.pinWorker(settings.process, workerID: id) { ServerLog.line(line) }
        } catch {
            writeStderr("swsgi worker \(id): \(error)")
            _exit(1)
        }
        scoreboard.set(slot, .pid, Int64(getpid()))
        // TERM is caught from here on (a TERM to the process group during --lazy-apps' import must not
        // kill a worker that would then look like an app that cannot load).
        let term: (read: Int32, write: Int32)
        do {
            term = try makePipe(nonBlocking: true)
            try WorkerTerm.install(notifyFD: term.write, scoreboard: scoreboard, slot: slot, chainHarakiri: false)
        } catch {
            writeStderr("swsgi worker \(id): \(error)")
            _exit(1)
        }
        var app = self.app
        let threads = settings.python.threads
        if let host, threads <= 1 {
            do { app = try host.workerApplication(workerID: id) } catch {
                writeStderr("swsgi worker \(id): \(error)")
                exit(ExitCode.appLoadFailed)
            }
        }
        app = StaticMap(settings.staticMaps, options: settings.staticFiles).wrap(app)
        var ctx = WorkerContext(id: id, slot: slot,
                                listeners: listeners.map { l in
                                    var w = WorkerListener(fd: l.fd, uwsgiProtocol: l.speaksUwsgi, remoteLabel: l.isUnix ? "unix" : "tcp")
                                    w.proxyProtocol = settings.proxyProtocol && !l.speaksUwsgi
                                    w.isUnix = l.isUnix
                                    w.inode = l.inode
                                    return w
                                },
                                scoreboard: scoreboard, settings: settings, limits: settings.limits, app: app, messageFD: readyWrite,
                                harakiriFD: harakiriFD, harakiriHandler: harakiriHandler, termFD: term.read, termWriteFD: term.write,
                                services: workerServices)
        ctx.sourceWatch = host?.sourceWatch
        if let host { ctx.exitHandlers = { host.workerExiting() } }
        do {
            if threads > 1 {
                let worker: ThreadedWorker
                do { worker = try ThreadedWorker(ctx, threads: threads, host: host) } catch {
                    writeStderr("swsgi worker \(id): \(error)")
                    exit(ExitCode.appLoadFailed)
                }
                try worker.run()
            }
            try Worker(ctx).run()
        } catch {
            ServerLog.line("\(error)")
            _exit(1)
        }
    }

    /// In a forked child (worker or mule): drop the master's fds.
    private func closeMasterFDs() {
        reactor.closeAfterFork()
        close(readyRead)
        for fd in harakiriFDs.values { close(fd) }
        if let s = stats {
            close(s.fd)
            // A stats client the master has not answered yet: a worker holding a copy would keep the
            // connection open after the master's answer and close, so the client never sees EOF.
            for p in s.pending { close(p.fd) }
        }
        if let n = notifier { close(n.fd) }
        fifo?.closeAfterFork()
    }

    /// A worker's request threads as its scoreboard rows show them (none with --threads 1).
    private func coreStats(_ slot: Int) -> [StatsSnapshot.CoreStats] {
        guard scoreboard.threads > 1 else { return [] }
        let now = monotonicNanoseconds()
        return (0..<scoreboard.threads).map { t in
            let busy = scoreboard.get(slot, core: t, .state) == Scoreboard.State.busy.rawValue
            let started = UInt64(max(0, scoreboard.get(slot, core: t, .requestStartNanos)))
            return .init(id: t, busy: busy, requests: Int(scoreboard.get(slot, core: t, .requests)),
                         runningRequest: busy ? scoreboard.request(slot, core: t) : nil,
                         runningForMilliseconds: busy ? (now - min(started, now)) / 1_000_000 : nil)
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
                         respawns: w.respawns, harakiris: harakiriCount[w.id, default: 0],
                         rssBytes: residentBytes(pid: w.pid), cores: i.map(coreStats) ?? [])
        }
        let queue = listenQueue()
        return StatsSnapshot(masterPID: masterPID, listenQueue: queue?.queued, listenQueueMax: queue?.backlog, workers: workers,
                             caches: services.cacheFigures, mules: services.muleFigures)
    }
}
