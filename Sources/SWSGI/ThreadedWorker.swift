import CGlibcShim
import Common
import Glibc
import HTTP
import Posix
import WorkerCore

/// A worker process with `--threads N` > 1 (`Worker` serves `--threads 1`, unchanged).
///
/// The main thread keeps the single-threaded worker's loop: it accepts, parks keep-alive connections
/// in epoll and reads request heads, so a slow client never holds a request thread. A complete head
/// becomes a `Job` in a queue that N request threads take from (FIFO, under one `Monitor`); a thread
/// runs the app, writes the response and hands the connection back (`Done`, through a pipe that wakes
/// the loop) for its next request. While all N threads are taken the listener leaves the epoll set,
/// so the other workers accept what this one could not start.
///
/// Signals stay the main thread's (request threads block all of them): what HUP, USR1, TERM, INT and QUIT
/// mean is `WorkerLifecycle`'s, as in `Worker` (one `.requestStarted`/`.requestFinished` per request);
/// harakiri's graceful signal runs the host's handlers here (`signalsArrived`), which interrupt only the
/// threads past their deadline (`overrunningThreads`).
final class ThreadedWorker {
    struct Job {
        let connection: Connection
        let head: HTTPRequestHead
        let rest: ArraySlice<UInt8>
    }
    struct Done {
        let connection: Connection
        let keepAlive: Bool
        let rest: ArraySlice<UInt8>
    }

    // Listeners: `WorkerListener.token(i)`.
    static let signalToken = UInt64.max - 1
    static let servicesToken = UInt64.max - 2
    static let termToken = UInt64.max - 3
    static let wakeToken = UInt64.max - 4
    /// `--py-autoreload`'s inotify fd.
    static let sourceToken = UInt64.max - 5
    /// The offload threads' "a transfer ended" pipe.
    static let offloadToken = UInt64.max - 6

    let ctx: WorkerContext
    let threadCount: Int
    let signals: SignalFD
    var epoll: Epoll
    var conns = ConnectionTable()
    var lifecycle = WorkerLifecycle()
    var retireAt: Instant = 0
    var nextScanAt: Instant = .max
    var scratch = [UInt8](repeating: 0, count: 65536)
    /// Connections a request thread holds (main thread only).
    var inFlight = Set<Int32>()
    /// The listener is in the epoll set (main thread only).
    var listening = true
    /// epoll_ctl refused to watch the listeners again: this worker accepts no more and waits to be replaced,
    /// serving the connections and requests it holds (main thread only).
    var listenersLost = false
    /// Connections accepted in the last `freshWindow` that have not sent a head yet: their requests are
    /// probably on the way, so they count against the free threads (else one worker would accept a burst
    /// of new connections that the other workers' idle threads could serve).
    /// (By fd, for O(1) counting and removal; `freshOrder` keeps them oldest first, for expiry.)
    var fresh: [Int32: Instant] = [:]
    var freshOrder: [(fd: Int32, at: Instant)] = []
    var freshHead = 0
    static let freshWindow: UInt64 = 100_000_000
    /// While every thread is taken the listener is out of the epoll set, so a worker with a free thread
    /// takes new connections; but when every worker is taken, connections would wait in the listen queue
    /// behind the keep-alive ones for ever. So a saturated worker looks at the listener this often and takes
    /// its fair share of what waits there in one go (`AcceptBalance`; a flood of idle or slow clients is not
    /// taken one by one). Connections it leaves to a worker that holds fewer (one with a free thread not yet
    /// scheduled on a loaded machine) become its own only after `AcceptShare.patienceNanoseconds`, so the look
    /// can come soon: every 100 ms made the last of a burst of keep-alive connections wait that long in the
    /// queue before any thread saw their requests.
    static let saturatedAcceptInterval: UInt64 = 20_000_000
    var saturatedAcceptAt: Instant?
    let log: AccessLog
    let wakeRead: Int32
    let wakeWrite: Int32
    let writeTimeoutMilliseconds: Int32
    /// `--offload-threads`: where the request threads hand file bodies once their head is out; nil without.
    let offload: OffloadPool?
    /// When the worker began to retire (the offload pool counts its mercy from it).
    var retiringSince: Instant?
    /// When to ask the master for a replacement.
    let recycling: RecyclingLimits
    /// Every thread was held by a long request at the last saturated look: the worker left the fair share
    /// (main thread only).
    var withdrawnWhileHeld = false
    let requestIDPrefix = "\(getpid())-"
    var threads: [RequestThread] = []
    var apps: RequestThreadApplications!
    /// The connections held, published for the other workers; the fair share of the listen queue.
    let balance: AcceptBalance
    /// With --harakiri: answers for the requests the master's kill would cut, just before it.
    var watch: HarakiriWatch?
    /// accept(2)'s failures: logged, and a pause for want of fds.
    var acceptFailures = AcceptFailures()
    /// Quiet keep-alive connections, left out of the held count.
    var idle = IdleConnections()
    /// The connections that count in the fair share: all but the quiet ones.
    private var activeHeld: Int { conns.count - idle.count }
    /// Connections the worker has ended and closes in stages, out of `conns`.
    let lingering = LingeringConnections()

    // Shared with the request threads: under `monitor`.
    let monitor = Monitor()
    var jobs = FIFOQueue<Job>()
    var done: [Done] = []
    var wakeWritten = false
    /// The worker retires: responses say `Connection: close`.
    var retiring = false
    var requestCounter: UInt64 = 0
    var served: Int64 = 0
    var recycleRequested = false

    /// `--py-autoreload`'s watch, once the app is loaded (nil when not asked for).
    var sourceWatch: SourceWatch? = nil

    init(_ ctx: WorkerContext, threads: Int, host: HostedApplication?) throws {
        self.ctx = ctx
        threadCount = threads
        balance = AcceptBalance(scoreboard: ctx.scoreboard, slot: ctx.slot, listeners: ctx.listeners)
        signals = try SignalFD([SIGHUP, SIGUSR1, SIGINT, SIGQUIT])
        if let handler = ctx.harakiriHandler { try installSignalHandler(ctx.settings.harakiriGracefulSignal, handler) }
        let s = ctx.settings
        recycling = RecyclingLimits(s, workerID: ctx.id)
        epoll = try Epoll()
        log = AccessLog(settings: ctx.settings, workerID: ctx.id, remote: ctx.remoteLabel)
        (wakeRead, wakeWrite) = try makePipe(nonBlocking: true)
        writeTimeoutMilliseconds = Int32(clamping: s.writeTimeoutNanoseconds / 1_000_000)
        offload = OffloadPool.start(count: s.offloadThreads, stallNanoseconds: s.writeTimeoutNanoseconds, workerID: ctx.id)
        if let offload { try epoll.add(offload.endedFD, token: Self.offloadToken) }
        for (i, l) in ctx.listeners.enumerated() { try epoll.add(l.fd, token: WorkerListener.token(i), events: Epoll.readable | Epoll.exclusive) }
        try epoll.add(signals.fd.raw, token: Self.signalToken)
        try epoll.add(wakeRead, token: Self.wakeToken)
        try epoll.add(ctx.termFD, token: Self.termToken)
        for (fd, exclusive) in ctx.services.workerQueues {
            try epoll.add(fd, token: Self.servicesToken, events: exclusive ? Epoll.readable | Epoll.exclusive : Epoll.readable)
        }
        if let host {
            apps = try host.workerThreadApplications(workerID: ctx.id, threads: threads) { [unowned self] in
                self.overrunningThreads()
            }
        } else {
            // A Swift app serves every thread: with --threads it must be safe to call concurrently.
            apps = RequestThreadApplications(apps: Array(repeating: ctx.app, count: threads))
        }
        sourceWatch = host?.sourceWatch
        if ctx.harakiriFD >= 0 { watch = try HarakiriWatch(worker: self, settings: s) }
        if let w = sourceWatch { try epoll.add(w.files.fd, token: Self.sourceToken) }
        // (ctx.app, a Swift app's, is already wrapped by the master.)
        let staticMap = StaticMap(s.staticMaps, options: s.staticFiles)
        for i in 0..<threads {
            self.threads.append(RequestThread(index: i, worker: self, app: host == nil ? apps.apps[i] : staticMap.wrap(apps.apps[i])))
        }
        // The app is loaded: a TERM handler it (or harakiri's Python support) installed is harakiri's now.
        try WorkerTerm.install(notifyFD: ctx.termWriteFD, scoreboard: ctx.scoreboard, slot: ctx.slot,
                               chainHarakiri: ctx.settings.harakiriGracefulSignal == SIGTERM, messageFD: ctx.messageFD)
    }

    /// Why a request thread may not start, when `--limit-as` is the likely cause.
    private func threadLimitHint() -> String {
        let mib = ctx.settings.process.limitAddressSpaceMiB
        guard mib > 0 else { return "" }
        var attributes = pthread_attr_t()
        var stack = 0
        if pthread_attr_init(&attributes) == 0 {
            pthread_attr_getstacksize(&attributes, &stack)
            pthread_attr_destroy(&attributes)
        }
        return " (under --limit-as \(mib) MiB: \(threads.count) request threads reserve \(threads.count) stacks of \(stack >> 20) MiB each; "
            + "raise limit-as, or lower threads/gevent/async and add processes)"
    }

    func tellMaster(_ m: WorkerMessage) {
        var record: (Int32, Int32) = (getpid(), m.rawValue)
        _ = withUnsafeBytes(of: &record) { Glibc.write(ctx.messageFD, $0.baseAddress, 8) }
    }

    func run() throws -> Never {
        for (i, t) in threads.enumerated() {
            let started = apps.threadStarted
            do {
                try startThread { [t] in
                    started()
                    t.loop()
                }
            } catch {
                // The worker cannot serve as configured (most often --limit-as leaves no room for the
                // stacks): a boot failure the master stops on, not a worker respawned forever.
                writeStderr("swsgi worker \(ctx.id): request thread \(i + 1) of \(threads.count) could not start: \(error)\(threadLimitHint())")
                _exit(ExitCode.appLoadFailed)
            }
        }
        if let watch {
            do { try startThread { [watch] in watch.loop() } } catch {
                writeStderr("swsgi worker \(ctx.id): the harakiri watch thread could not start: \(error)\(threadLimitHint())")
                _exit(ExitCode.appLoadFailed)
            }
        }
        perform(lifecycle.handle(.appLoaded))
        heldChanged()
        while true {
            let now = monotonicNanoseconds()
            let graceRunning = lifecycle.mode == .retiring(graceOver: false)
            if now >= nextScanAt || (graceRunning && now >= retireAt) {
                if graceRunning && now >= retireAt { perform(lifecycle.handle(.retireGraceOver)) }
                expireConnections(now: now)
                if !fresh.isEmpty { updateListening() }
            }
            if acceptFailures.pausedUntil != nil && acceptFailures.resumes(now: now) { updateListening() }
            if let at = saturatedAcceptAt, now >= at {
                saturatedAcceptAt = nil
                // Whether or not the listener is watched again by now (it is, one accept per wake-up,
                // once the fresh connections stop counting): this worker's fair share of what still waits is
                // taken in one go. (Taking all of it put 49 of 64 keep-alive connections on one worker of two:
                // each waited 49 / 4 requests' time where 32 / 4 was fair.)
                if lifecycle.accepting && !listenersLost && !doomed {
                    if threadsHeld(now: now) {
                        // Every thread is held by a long request: connections taken now would wait for it while another
                        // worker (or this one, once a thread is free) could serve them from the queue. The worker
                        // leaves the share until a thread is free (`collectDone`), so the others neither leave
                        // connections to it nor let theirs go to it.
                        if !withdrawnWhileHeld {
                            withdrawnWhileHeld = true
                            balance.withdraw()
                        }
                    } else {
                        if withdrawnWhileHeld {
                            withdrawnWhileHeld = false
                            heldChanged()
                        }
                        let take = balance.look(held: activeHeld)?.take ?? Int.max
                        if take > 0 {
                            let error = balance.accept(take) { adopt($0, from: $1) }
                            // The look published what it meant to take; fewer may have been there.
                            heldChanged()
                            if let error { acceptFailed(error) }
                        }
                        shedExcess()
                    }
                }
                updateListening()
            }
            // In-flight connections are in `conns`: a retiring worker waits for every thread's request.
            if lifecycle.retiring {
                if retiringSince == nil { retiringSince = now }
                // Each turn: the master's deadline may come sooner (an immediate stop after a reload).
                if !lingering.isEmpty {
                    lingering.retiring(cutAt: retireCut(now), now: now, watch: self)
                    scheduleLingering()
                }
            }
            if lifecycle.retiring && conns.isEmpty {
                // What already arrived is heard before leaving (as in `Worker`).
                handleSignals()
                if WorkerTerm.arrived && !lifecycle.toldTERM { termArrived() }
                if conns.isEmpty && offloadedTransfersOver(now: now) && lingering.isEmpty { perform(lifecycle.handle(.connectionsClosed)) }
            }
            var wake = min(nextScanAt, saturatedAcceptAt ?? .max, acceptFailures.pausedUntil ?? .max)
            if lifecycle.mode == .retiring(graceOver: false) { wake = min(wake, retireAt) }
            if let at = offload?.cutAt { wake = min(wake, at) }
            let timeout: Int32 = wake == .max ? -1 : Int32(min((wake &- min(wake, now)) / 1_000_000 + 1, 60_000))
            let count: Int
            do { count = try epoll.waitCount(timeoutMilliseconds: timeout) } catch {
                ServerLog.line("\(error)")
                _exit(1)
            }
            // A timeout or a signal (EINTR): Python's handlers (harakiri's graceful one) run only here.
            if count == 0 { apps.signalsArrived() }
            for i in 0..<count {
                let token = epoll.event(i).token
                switch token {
                case Self.signalToken: handleSignals()
                case Self.termToken: termArrived()
                case Self.servicesToken: ctx.services.workerQueuesReadable()
                case Self.wakeToken: collectDone()
                case Self.sourceToken: sourceWatch?.changed(tell: tellMaster)
                case Self.offloadToken: offload?.takeEnded()
                default:
                    if let i = WorkerListener.index(token) {
                        if lifecycle.accepting && listening { acceptOne(ctx.listeners[i]) }
                    } else if let c = conns[Int32(truncatingIfNeeded: token)] {
                        readable(c)
                    } else if lingering.holds(Int32(truncatingIfNeeded: token)) {
                        lingering.readable(Int32(truncatingIfNeeded: token), watch: self)
                    }
                }
            }
        }
    }

    /// When the retiring worker stops waiting for its lingering closes and offloaded transfers (`RetireCut`).
    private func retireCut(_ now: Instant) -> Instant {
        RetireCut.deadline(retiringSince: retiringSince ?? now, mercyNanoseconds: ctx.settings.workerReloadMercyNanoseconds,
                           masterKillAt: ctx.scoreboard.get(ctx.slot, .killDeadline))
    }

    private func offloadedTransfersOver(now: Instant) -> Bool {
        offload?.retiringWaitOver(now: now, cut: retireCut(now)) ?? true
    }

    // MARK: connections (main thread)

    /// Connections are watched one-shot: an event disarms its fd, so one a thread holds cannot wake the loop.
    private static let connectionEvents = Epoll.readable | UInt32(EPOLLONESHOT.rawValue)

    private func acceptOne(_ l: WorkerListener) {
        let accepted: FileDescriptor?
        do { accepted = try UnixSocket.accept(l.fd, nonBlocking: true) } catch {
            acceptFailed(error)
            return
        }
        guard let fd = accepted else { return }
        adopt(fd.release(), from: l)
    }

    /// accept(2) failed (`AcceptFailures`): logged; for want of fds the listeners are not watched (nor looked
    /// at) until the pause ends.
    private func acceptFailed(_ error: Error) {
        // Lingering closes give their fds back first (see `Worker.acceptFailed`).
        if LingeringConnections.isOutOfFDs(error) && lingering.shed(watch: self) { return }
        if acceptFailures.failed(error, held: conns.count + lingering.count, now: monotonicNanoseconds()) != nil {
            saturatedAcceptAt = nil
            updateListening()
        }
    }

    /// Takes every connection waiting on any listener.
    private func drainListeners() {
        for l in ctx.listeners {
            while let fd = try? UnixSocket.accept(l.fd, nonBlocking: true) { adopt(fd.release(), from: l) }
        }
    }

    private func adopt(_ fd: Int32, from l: WorkerListener) {
        let now = monotonicNanoseconds()
        let c = Connection(fd: fd, limits: ctx.limits, now: now, uwsgi: l.uwsgiProtocol, remoteLabel: l.remoteLabel,
                           proxyProtocol: l.proxyProtocol)
        conns[fd] = c
        do { try epoll.add(fd, token: UInt64(UInt32(bitPattern: fd)), events: Self.connectionEvents) } catch {
            conns[fd] = nil
            return
        }
        heldChanged()
        if lifecycle.retiring { c.closeAfterNext = true }
        readable(c)
        if conns[fd] != nil && !inFlight.contains(fd) {
            schedule(c.lastActivity + ctx.settings.headerTimeoutNanoseconds)
            schedule(c.lastActivity + IdleConnections.after)
            fresh[fd] = now
            freshOrder.append((fd, now))
            updateListening()
        }
    }

    private func rearm(_ c: Connection) {
        _ = shim_epoll_ctl(epoll.fd.raw, EPOLL_CTL_MOD, c.fd, Self.connectionEvents, UInt64(UInt32(bitPattern: c.fd)))
    }

    private func schedule(_ at: Instant) { if at < nextScanAt { nextScanAt = at } }

    /// Closes a connection its client closed or reset (or that cannot be watched).
    private func drop(_ c: Connection) {
        epoll.remove(c.fd)
        conns[c.fd] = nil
        fresh[c.fd] = nil
        _ = idle.unmark(c)
        heldChanged()
    }

    // MARK: lingering close (main thread)

    /// The worker ends `c` (after its response, or idle): it leaves the table, and `lingering` closes it.
    private func end(_ c: Connection) {
        conns[c.fd] = nil
        fresh[c.fd] = nil
        _ = idle.unmark(c)
        heldChanged()
        lingering.end(c, now: monotonicNanoseconds(), watch: self)
        scheduleLingering()
    }

    /// The next lingering deadline joins the scan's.
    private func scheduleLingering() {
        if let next = lingering.nearestDeadline { schedule(next) }
    }

    /// Holding clearly more connections than the emptiest other worker (`AcceptShare.excess`), a worker answers the
    /// next request of its excess idle connections with `Connection: close`, so their clients connect again and the
    /// workers holding fewer take them: also below its thread count, as the single-threaded worker does (a Python
    /// app's threads share one GIL: two clients on one worker's threads beside an idle worker got half the
    /// throughput of a 1/1 split). (Only connections no thread holds: a request thread reads `closeAfterNext` of
    /// the one it serves.)
    private func shedExcess() {
        guard lifecycle.accepting && !listenersLost && !withdrawnWhileHeld && activeHeld >= 2 else { return }
        var n = balance.excess(held: activeHeld)
        guard n > 0 else { return }
        for c in conns.values where c.closeAfterNext && !c.countedIdle { n -= 1 }
        for c in conns.values where n > 0 && !c.closeAfterNext && !c.countedIdle && !inFlight.contains(c.fd) {
            c.closeAfterNext = true
            n -= 1
        }
    }

    /// Tells the other workers how many connections this one holds (while it accepts and a thread can serve).
    private func heldChanged() {
        if lifecycle.accepting && !listenersLost && !withdrawnWhileHeld { balance.publish(held: activeHeld) }
    }

    /// Every request thread has been in its request `AcceptShare.patienceNanoseconds` or longer, counted from when
    /// it took the job (a job that waited in the queue is not a long request).
    private func threadsHeld(now: Instant) -> Bool {
        monitor.withLock { threads.allSatisfy { $0.busy && AcceptShare.holdsItsThread(startedAt: $0.busySince, now: now) } }
    }

    private func readable(_ c: Connection) {
        guard !inFlight.contains(c.fd) else { return }
        let n = scratch.withUnsafeMutableBytes { Glibc.read(c.fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { rearm(c); return }
            drop(c)
            return
        }
        if n == 0 { drop(c); return }
        c.lastActivity = monotonicNanoseconds()
        if idle.unmark(c) { heldChanged() }
        // Copied: the request thread keeps its slice while this buffer takes the next read.
        continueWith(c, Array(scratch[0..<n])[...])
    }

    /// Parses `input`; a complete head goes to a request thread, an incomplete one waits for more.
    private func continueWith(_ c: Connection, _ bytes: ArraySlice<UInt8>) {
        var input = bytes
        if c.expectsProxyHeader && c.proxyHeader != nil {
            switch c.takeProxyHeader(bytes) {
            case .needMore:
                if c.headStartedAt == nil {
                    c.headStartedAt = c.acceptedAt
                    schedule(c.acceptedAt + ctx.settings.headerTimeoutNanoseconds)
                }
                rearm(c)
                return
            case .refuse(let why):
                ServerLog.line("connection closed: \(why) (--enable-proxy-protocol)")
                end(c)
                return
            case .rest(let rest):
                if rest.isEmpty { rearm(c); return }
                input = rest
            }
        }
        switch c.uwsgi?.parse(input) ?? c.parser.parse(input) {
        case .needMore:
            if c.headStartedAt == nil {
                c.headStartedAt = c.requests == 0 ? c.acceptedAt : c.lastActivity
                schedule(c.headStartedAt! + ctx.settings.headerTimeoutNanoseconds)
            }
            rearm(c)
        case .error(let e):
            try? c.writeAll(HTTPResponseWriter.errorResponse(for: e, date: DateClock.now), timeoutMilliseconds: 1000)
            log.refused(e, started: c.lastActivity)
            end(c)
        case .head(let head, let consumed):
            c.headStartedAt = nil
            c.requests += 1
            fresh[c.fd] = nil
            if let watch, doomed {
                watch.answerNew(c, method: head.method, path: head.path, started: c.lastActivity)
                end(c)
                return
            }
            inFlight.insert(c.fd)
            _ = lifecycle.handle(.requestStarted)
            let job = Job(connection: c, head: head, rest: input[(input.startIndex + consumed)...])
            monitor.withLock {
                jobs.append(job)
                monitor.signal()
            }
            updateListening()
        }
    }

    /// All threads taken: leave the listen queue to the other workers until one is free again.
    private func updateListening() {
        // While a harakiri kill is near, no connection is taken: the listen queue keeps them for the others.
        let paused = acceptFailures.pausedUntil != nil || doomed
        var want = lifecycle.accepting && !listenersLost && !paused && inFlight.count < threadCount
        if fresh.isEmpty {
            // Nothing counts: the expiry order goes too (it only names entries of `fresh`).
            if !freshOrder.isEmpty {
                freshOrder.removeAll(keepingCapacity: true)
                freshHead = 0
            }
        } else if want {
            let now = monotonicNanoseconds()
            // Oldest first: those past the window stop counting (an fd closed and reused since is a new entry).
            while freshHead < freshOrder.count, now >= freshOrder[freshHead].at + Self.freshWindow {
                let f = freshOrder[freshHead]
                if fresh[f.fd] == f.at { fresh[f.fd] = nil }
                freshHead += 1
            }
            if freshHead == freshOrder.count {
                freshOrder.removeAll(keepingCapacity: true)
                freshHead = 0
            }
            if inFlight.count + fresh.count >= threadCount {
                want = false
                // Look again when the oldest stops counting.
                if freshHead < freshOrder.count { schedule(freshOrder[freshHead].at + Self.freshWindow) }
            }
        }
        // (Not while every thread is held: nothing is taken until one is free, and its end calls this again.)
        if !want && lifecycle.accepting && !listenersLost && !paused && saturatedAcceptAt == nil && !withdrawnWhileHeld {
            saturatedAcceptAt = monotonicNanoseconds() + Self.saturatedAcceptInterval
        }
        guard want != listening else { return }
        listening = want
        if want {
            do {
                for (i, l) in ctx.listeners.enumerated() { try epoll.add(l.fd, token: WorkerListener.token(i), events: Epoll.readable | Epoll.exclusive) }
            } catch {
                // (ENOSPC: the per-user limit on watched fds; ENOMEM.) Exiting would cut the requests the threads
                // hold: the worker serves what it has, accepts no more, and is replaced.
                for l in ctx.listeners { epoll.remove(l.fd) }
                listening = false
                listenersLost = true
                balance.withdraw()
                ServerLog.line("\(error): this worker cannot watch its listener again; it serves the connections it holds and is replaced")
                let tell: Bool = monitor.withLock {
                    defer { recycleRequested = true }
                    return !recycleRequested
                }
                if tell { tellMaster(.recycleListenerLost) }
            }
        } else {
            for l in ctx.listeners { epoll.remove(l.fd) }
        }
    }

    /// A harakiri kill is near (`HarakiriWatch`): no connection is taken, and each new request is answered 503.
    private var doomed: Bool {
        guard let watch else { return false }
        return monitor.withLock { watch.notice.answersNewRequests }
    }

    /// Connections the threads have answered: parked for their next request, or closed.
    private func collectDone() {
        var byte = [UInt8](repeating: 0, count: 64)
        let finished: [Done] = monitor.withLock {
            while byte.withUnsafeMutableBytes({ Glibc.read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
            wakeWritten = false
            let d = done
            done.removeAll(keepingCapacity: true)
            return d
        }
        var after: [WorkerLifecycle.Action] = []
        for d in finished {
            let c = d.connection
            inFlight.remove(c.fd)
            after += lifecycle.handle(.requestFinished)
            if !d.keepAlive {
                end(c)
                continue
            }
            if lifecycle.retiring { c.closeAfterNext = true }
            if ctx.settings.keepaliveTimeoutNanoseconds > 0 { schedule(c.lastActivity + ctx.settings.keepaliveTimeoutNanoseconds) }
            schedule(c.lastActivity + IdleConnections.after)
            if d.rest.isEmpty {
                rearm(c)
            } else {
                continueWith(c, d.rest)
            }
        }
        // A thread is free: back in the fair share.
        if withdrawnWhileHeld && !finished.isEmpty {
            withdrawnWhileHeld = false
            heldChanged()
        }
        // Not only when saturated: two clients on one worker's threads while another worker idles share one GIL.
        if !finished.isEmpty { shedExcess() }
        updateListening()
        // A drain that waited for the requests' end serves connections: carried out after the loop above.
        perform(after)
    }

    /// Closes connections past their header or keep-alive timeout, and when retiring, idle ones past the grace.
    private func expireConnections(now: Instant) {
        nextScanAt = .max
        let idleBefore = idle.count
        defer { if idle.count != idleBefore { heldChanged() } }
        for c in conns.values where !inFlight.contains(c.fd) {
            if lifecycle.retiring && c.headStartedAt == nil {
                if now >= retireAt { end(c) }
                continue
            }
            if c.headStartedAt != nil || c.requests == 0 {
                let started = c.headStartedAt ?? c.lastActivity
                let deadline = started + ctx.settings.headerTimeoutNanoseconds
                if now >= deadline {
                    if c.headStartedAt != nil {
                        log.answerHeadTimeout(c, started: started)
                    }
                    end(c)
                } else {
                    schedule(deadline)
                }
                continue
            }
            let idleTimeout = ctx.settings.keepaliveTimeoutNanoseconds
            if idleTimeout > 0 {
                if now >= c.lastActivity + idleTimeout {
                    end(c)
                    continue
                }
                schedule(c.lastActivity + idleTimeout)
            }
            if let again = idle.scan(c, now: now) { schedule(again) }
        }
        lingering.expire(now: now, watch: self)
        scheduleLingering()
    }

    // MARK: signals (main thread)

    private func handleSignals() {
        while let (sig, _) = try? signals.next() {
            let signal: WorkerLifecycle.Signal
            switch sig {
            case SIGUSR1: signal = .usr1
            case SIGHUP: signal = .hup
            case SIGINT: signal = .int
            default: signal = .quit
            }
            perform(lifecycle.handle(.signal(signal)))
        }
        // The graceful signal the master sends after HUP may already be pending too.
        apps.signalsArrived()
    }

    /// The SIGTERM handler wrote to its pipe.
    private func termArrived() {
        var byte: UInt8 = 0
        while Glibc.read(ctx.termFD, &byte, 1) > 0 {}
        perform(lifecycle.handle(.signal(.term)))
    }

    /// Carries out the lifecycle's decisions.
    private func perform(_ actions: [WorkerLifecycle.Action]) {
        for action in actions {
            switch action {
            case .tell(let message):
                tellMaster(message)
            case .stopAccepting:
                balance.withdraw()
                if listening {
                    for l in ctx.listeners { epoll.remove(l.fd) }
                    listening = false
                }
                monitor.withLock { retiring = true }
                for c in conns.values where !inFlight.contains(c.fd) { c.closeAfterNext = true }
            case .armRetireGrace:
                retireAt = monotonicNanoseconds() + Worker.retireGrace
            case .drainListenQueue:
                // Connections already queued would be reset when the listeners close: take them all.
                drainListeners()
            case .closeIdleConnections:
                expireConnections(now: monotonicNanoseconds())
            case .exit(let code):
                ctx.exitHandlers?()
                _exit(code)
            }
        }
    }

    // MARK: shared with the request threads

    /// Called by a request thread: blocks until a job is queued.
    func nextJob() -> Job {
        monitor.lock()
        defer { monitor.unlock() }
        while true {
            if let job = jobs.popFirst() { return job }
            monitor.wait()
        }
    }

    /// Called by a request thread with its answered connection. Holds the monitor.
    func finishedLocked(_ d: Done) {
        done.append(d)
        wakeLoopLocked()
    }

    /// Wakes the main loop (to collect `done`, and to look at the harakiri watch again). Holds the monitor.
    func wakeLoopLocked() {
        if !wakeWritten {
            wakeWritten = true
            var one: UInt8 = 1
            _ = Glibc.write(wakeWrite, &one, 1)
        }
    }

    /// The request threads (pthread ids) past their harakiri deadline, for the graceful signal's handler.
    func overrunningThreads() -> [UInt] {
        let now = monotonicNanoseconds()
        return monitor.withLock {
            threads.compactMap { t in t.harakiriDeadline.flatMap { $0 <= now ? t.pthreadID : nil } }
        }
    }

    /// The worker's scoreboard row shows the request with the nearest harakiri deadline (the master's
    /// harakiri reads it), or else the oldest; busy while any thread is. Holds the monitor.
    func publishLocked() {
        let sb = ctx.scoreboard, slot = ctx.slot
        var pick: RequestThread?
        for t in threads where t.busy {
            guard let p = pick else { pick = t; continue }
            let a = t.harakiriDeadline ?? .max, b = p.harakiriDeadline ?? .max
            if a < b || (a == b && t.requestStarted < p.requestStarted) { pick = t }
        }
        watch?.nearestChangedLocked(pick?.harakiriDeadline)
        guard let pick else {
            sb.set(slot, .state, Scoreboard.State.idle.rawValue)
            if ctx.harakiriFD >= 0 {
                sb.set(slot, .harakiriDeadline, 0)
                SharedTimer.arm(ctx.harakiriFD, at: nil)
            }
            return
        }
        sb.set(slot, .requestStartNanos, Int64(pick.requestStarted))
        // The master marks a harakiri with this number; the TERM handler compares it to tell harakiri's
        // graceful TERM from a stop-TERM (see `WorkerTerm`).
        sb.set(slot, .requestCounter, Int64(pick.requestNumber))
        sb.setRequest(slot, method: pick.requestMethod, path: pick.requestPath)
        sb.set(slot, .state, Scoreboard.State.busy.rawValue)
        if ctx.harakiriFD >= 0 {
            sb.set(slot, .harakiriDeadline, Int64(clamping: pick.harakiriDeadline ?? 0))
            SharedTimer.arm(ctx.harakiriFD, at: pick.harakiriDeadline)
        }
    }

    /// The requests a harakiri kill at `killAt` would cut: each thread's running request not answered yet,
    /// and every request queued for a thread (taken from the queue: the watch answers and hands them back).
    /// Holds the monitor.
    func takeDoomedLocked(killAt: Instant) -> [HarakiriWatch.Target] {
        var targets: [HarakiriWatch.Target] = []
        for t in threads where t.busy && t.answeredRequest != t.requestNumber {
            guard let c = t.connection else { continue }
            t.answeredRequest = t.requestNumber
            targets.append(.init(connection: c, number: t.requestNumber, thread: t.index, method: t.requestMethod, path: t.requestPath,
                                 started: t.requestStarted, overdue: t.harakiriDeadline.map { $0 <= killAt } ?? false))
        }
        while let job = jobs.popFirst() {
            targets.append(.init(connection: job.connection, number: 0, thread: nil, method: job.head.method, path: job.head.path,
                                 started: job.connection.lastActivity, overdue: false))
        }
        return targets
    }

    /// Counts a served request (max-requests and reload-on-rss are per worker). Holds the monitor.
    func countServedLocked(busyNanoseconds: UInt64, appRaised: Bool) {
        let sb = ctx.scoreboard, slot = ctx.slot
        served += 1
        sb.set(slot, .requests, served)
        // Busyness counts threads: a worker with every thread busy all the time is 100% busy.
        sb.set(slot, .busyNanos, sb.get(slot, .busyNanos) + Int64(busyNanoseconds / UInt64(threadCount)))
        guard !recycleRequested, let limit = recycling.reached(served: served, appRaised: appRaised) else { return }
        recycleRequested = true
        tellMaster(limit)
    }
}

extension ThreadedWorker: LingeringWatch {
    /// Every connection is in the epoll set, one-shot: from here it is watched for good (its input is only dropped).
    func watchLingering(_ c: Connection) throws {
        try epoll.modify(c.fd, token: UInt64(UInt32(bitPattern: c.fd)), events: Epoll.readable)
    }

    func unwatchLingering(_ c: Connection) { epoll.remove(c.fd) }
}
