import CGlibcShim
import Glibc
import HTTP
import Posix
import Common
// MSG_DONTWAIT: in a release (whole-module) build the constant is found only through the shim module, whose
// header includes sys/socket.h too (a debug build finds it through Glibc).
import CGlibcShim
import WorkerCore

/// What a worker needs from its master; fixed for the worker's life.
struct WorkerContext {
    let id: Int
    let slot: Int
    /// Every listener the worker accepts on, each with its protocol.
    let listeners: [WorkerListener]
    let scoreboard: Scoreboard
    let settings: ServerSettings
    /// The parser limits the settings ask for, made once (`ServerOptions.limits` builds them on each call).
    let limits: HTTPLimits
    let app: Application
    /// The master's pipe: a worker writes `WorkerMessage`s there (ready, please recycle me).
    let messageFD: Int32
    /// A timerfd shared with the master: armed at each request's harakiri deadline (-1: no harakiri).
    let harakiriFD: Int32
    /// Installed for --harakiri-graceful-signal so the app can flush before SIGKILL.
    let harakiriHandler: HarakiriHandler?
    /// The pipe the worker's SIGTERM handler writes to (see `WorkerTerm`).
    let termFD: Int32
    let termWriteFD: Int32
    /// This worker's side of the services: its signal queues and the handlers they run.
    let services: WorkerServices
    /// The app's source files (`--py-autoreload`), once it is loaded; nil when not asked for.
    var sourceWatch: SourceWatch? = nil
    /// The hosted app's exit handlers (Python's atexit), run as the worker exits in order.
    var exitHandlers: (() -> Void)? = nil
}

/// One listener as a worker sees it: the fd, the protocol its connections speak, the peer label.
struct WorkerListener {
    let fd: Int32
    /// Connections speak the uwsgi protocol (--uwsgi-socket), not HTTP.
    let uwsgiProtocol: Bool
    /// `unix` or `tcp`: `Request.remote` for its connections.
    let remoteLabel: String
    /// Connections start with a PROXY protocol header (`--enable-proxy-protocol`, HTTP listeners only).
    var proxyProtocol = false
    /// A Unix socket (its queue is read through sock_diag by `inode`), else TCP (TCP_INFO on the fd).
    var isUnix = false
    var inode: ino_t = 0

    /// Connections waiting in this listener's accept queue, as the kernel counts them; nil if it will not say.
    func queued() -> Int? {
        isUnix ? (try? UnixSocket.listenQueue(inode: inode))?.queued : tcpListenQueue(fd)?.queued
    }

    /// Epoll tokens of the listeners: below every fixed token of both worker loops, far above any fd (a
    /// connection's token is its fd, under 2^32). The range holds any listener count an fd table can: every
    /// listener bound is watched (a listener left out would queue its connections forever).
    static let tokenBase = UInt64.max - 16
    static let maxCount = Int(Int32.max)
    static func token(_ index: Int) -> UInt64 { tokenBase - UInt64(index) }
    /// The listener a token names, nil for any other token.
    static func index(_ token: UInt64) -> Int? {
        token <= tokenBase && token > tokenBase - UInt64(maxCount) ? Int(tokenBase - token) : nil
    }
}

extension WorkerContext {
    /// The access log's `%(addr)` label: the listeners' common one, else `-`.
    var remoteLabel: String { Set(listeners.map(\.remoteLabel)).count == 1 ? listeners[0].remoteLabel : "-" }
}

/// What a worker tells its master, 8 bytes (pid, code) per message: atomic on a pipe.
typealias WorkerMessage = WorkerLifecycle.MasterMessage

/// A worker process: one request at a time, idle keep-alive connections parked in epoll, new
/// connections accepted whenever no request is in hand. So two workers can serve a pool of 32
/// nginx upstream connections without one idle connection pinning a worker.
///
/// What each signal means, in each mode, is `WorkerLifecycle`'s decision (HUP, USR1, TERM, INT/QUIT);
/// this class turns fds into its events and carries out its actions.
final class Worker {
    /// Reactor tokens: connections use their fd; the top two values are the reactor's own; listeners
    /// are `WorkerListener.token(i)`.
    /// The services' signal queues (timers, cron; see WorkerServices).
    static let servicesToken = UInt64.max - 3
    /// The SIGTERM handler's pipe.
    static let termToken = UInt64.max - 4
    /// `--py-autoreload`'s inotify fd.
    static let sourceToken = UInt64.max - 5
    /// The offload threads' "a transfer ended" pipe.
    static let offloadToken = UInt64.max - 6
    /// How long a retiring worker leaves an idle keep-alive connection open for a request nginx
    /// may already be sending on it; such a request is answered with `Connection: close`.
    static let retireGrace: UInt64 = 200_000_000
    /// Responses are built in one buffer per worker, kept between requests (`KeptBuffer`).
    var responseBuffer: [UInt8] {
        unsafeAddress { responseBufferCell.address }
        unsafeMutableAddress { responseBufferCell.pointer }
    }
    private let responseBufferCell: Cell<[UInt8]> = {
        var b: [UInt8] = []
        b.reserveCapacity(512)
        return Cell(b)
    }()
    // The loop's hot stored properties live in `Cell`s: each access to a stored `var` of this class that is ever
    // changed in place costs a dynamic exclusivity check, and these are read or changed on every request.
    private let connsCell = Cell(ConnectionTable())
    private let afterRequestCell = Cell([WorkerLifecycle.Action]())
    private let nextScanAtCell = Cell(Instant.max)
    private let scratchCell = Cell([UInt8](repeating: 0, count: 65536))
    private let inHandCell = Cell(InHand?.none)
    private let lifecycleCell = Cell(WorkerLifecycle())
    private let requestCounterCell = Cell(UInt64(0))
    private let harakiriDeadlineCell = Cell(Instant?.none)
    private let recycleRequestedCell = Cell(false)
    /// The method and path this worker last wrote in its scoreboard row (a keep-alive client repeating its request
    /// finds them there already: no copy). Only this worker writes its row's text.
    private let rowTextCell = Cell(Scoreboard.RowText())
    /// The field lines of the last response's headers (most apps send the same ones every time).
    let fieldLines = HTTPFieldLinesCache()
    /// After this many requests a worker drops its code pages from its resident set (`dropCodePageTableEntries`).
    static let warmUpRequests: UInt64 = 100

    let ctx: WorkerContext
    /// The same loop as the master's: epoll, the signalfd (HUP, USR1, INT, QUIT), one timerfd for the
    /// keep-alive, header and retire deadlines. It reaps nothing: the app's children are the app's.
    let reactor: Reactor
    var conns: ConnectionTable {
        unsafeAddress { connsCell.address }
        unsafeMutableAddress { connsCell.pointer }
    }
    var lifecycle: WorkerLifecycle {
        unsafeAddress { lifecycleCell.address }
        unsafeMutableAddress { lifecycleCell.pointer }
    }
    /// The lifecycle's decisions at the end of a request, carried out back in the loop.
    var afterRequest: [WorkerLifecycle.Action] {
        unsafeAddress { afterRequestCell.address }
        unsafeMutableAddress { afterRequestCell.pointer }
    }
    var retireAt: Instant = 0
    var nextScanAt: Instant {
        unsafeAddress { nextScanAtCell.address }
        unsafeMutableAddress { nextScanAtCell.pointer }
    }
    var requestCounter: UInt64 {
        unsafeAddress { requestCounterCell.address }
        unsafeMutableAddress { requestCounterCell.pointer }
    }
    var scratch: [UInt8] {
        unsafeAddress { scratchCell.address }
        unsafeMutableAddress { scratchCell.pointer }
    }
    /// "pid-": request ids are this and the request's number.
    let requestIDPrefix = "\(getpid())-"
    /// The request in hand while the app runs.
    var inHand: InHand? {
        unsafeAddress { inHandCell.address }
        unsafeMutableAddress { inHandCell.pointer }
    }
    let log: AccessLog
    var harakiriDeadline: Instant? {
        unsafeAddress { harakiriDeadlineCell.address }
        unsafeMutableAddress { harakiriDeadlineCell.pointer }
    }
    var recycleRequested: Bool {
        unsafeAddress { recycleRequestedCell.address }
        unsafeMutableAddress { recycleRequestedCell.pointer }
    }
    let writeTimeoutMilliseconds: Int32
    /// `--offload-threads`: where file bodies go once their head is out; nil without.
    let offload: OffloadPool?
    /// When the worker began to retire (the offload pool counts its mercy from it).
    var retiringSince: Instant?
    /// When to ask the master for a replacement.
    let recycling: RecyclingLimits
    /// The connections held, published for the other workers; the fair share of the listen queue.
    let balance: AcceptBalance
    /// accept(2)'s failures: logged, and a pause for want of fds.
    var acceptFailures = AcceptFailures()
    /// Quiet keep-alive connections, left out of the held count.
    var idle = IdleConnections()
    /// The connections that count in the fair share: all but the quiet ones.
    private var activeHeld: Int { conns.count - idle.count }
    /// Connections the worker has ended and closes in stages, out of `conns`.
    let lingering = LingeringConnections()
    /// epoll_ctl refused to watch a listener again: this worker no longer counts as accepting.
    var listenersLost = false
    /// What the fair share needs between requests. In fixed storage: read after every request, and a stored
    /// property's read costs an exclusivity check.
    private struct ShareTicks {
        /// The last look left connections in the listen queue: look again after each request until none
        /// waits (otherwise the next look comes a whole round of this worker's connections later).
        var queueWaiting = false
        /// Served connections until the next check for an excess of connections (`shedExcess`).
        var untilExcessCheck = Worker.excessCheckEvery
    }
    private static let excessCheckEvery: UInt8 = 32
    private let ticks: UnsafeMutablePointer<ShareTicks> = {
        let p = UnsafeMutablePointer<ShareTicks>.allocate(capacity: 1)
        p.initialize(to: ShareTicks())
        return p
    }()
    private var queueWaiting: Bool {
        get { ticks.pointee.queueWaiting }
        set { ticks.pointee.queueWaiting = newValue }
    }

    init(_ ctx: WorkerContext) throws {
        self.ctx = ctx
        balance = AcceptBalance(scoreboard: ctx.scoreboard, slot: ctx.slot, listeners: ctx.listeners)
        // Ready connections are served least recently served first (see `Reactor.readableOrder`); what is not
        // a connection (listeners, pipes) keeps its place.
        let recency = ConnectionRecency()
        reactor = try Reactor(signals: [SIGHUP, SIGUSR1, SIGINT, SIGQUIT], reapChildren: false,
                              readableOrder: { token in recency.worker?.conns.lastActivity(Int32(truncatingIfNeeded: token)) })
        if let handler = ctx.harakiriHandler { try installSignalHandler(ctx.settings.harakiriGracefulSignal, handler) }
        // The app is loaded: a TERM handler it (or harakiri's Python support) installed is harakiri's now.
        try WorkerTerm.install(notifyFD: ctx.termWriteFD, scoreboard: ctx.scoreboard, slot: ctx.slot,
                               chainHarakiri: ctx.settings.harakiriGracefulSignal == SIGTERM, messageFD: ctx.messageFD)
        let s = ctx.settings
        recycling = RecyclingLimits(s, workerID: ctx.id)
        log = AccessLog(settings: ctx.settings, workerID: ctx.id, remote: ctx.remoteLabel)
        writeTimeoutMilliseconds = Int32(clamping: s.writeTimeoutNanoseconds / 1_000_000)
        offload = OffloadPool.start(count: s.offloadThreads, stallNanoseconds: s.writeTimeoutNanoseconds, workerID: ctx.id)
        if let offload { try reactor.watch(offload.endedFD, token: Self.offloadToken) }
        for (i, l) in ctx.listeners.enumerated() {
            try reactor.watch(l.fd, token: WorkerListener.token(i), events: Epoll.readable | Epoll.exclusive)
        }
        try reactor.watch(ctx.termFD, token: Self.termToken)
        if let w = ctx.sourceWatch { try reactor.watch(w.files.fd, token: Self.sourceToken) }
        for (fd, exclusive) in ctx.services.workerQueues {
            try reactor.watch(fd, token: Self.servicesToken, events: exclusive ? Epoll.readable | Epoll.exclusive : Epoll.readable)
        }
        recency.worker = self
    }

    func tellMaster(_ m: WorkerMessage) {
        var record: (Int32, Int32) = (getpid(), m.rawValue)
        _ = withUnsafeBytes(of: &record) { Glibc.write(ctx.messageFD, $0.baseAddress, 8) }
    }

    func run() -> Never {
        // (The start-up code leaves the worker's resident set once it has warmed up: see `serve`. MADV_PAGEOUT,
        // hupwatch's way, would do nothing here: the master maps the same pages.)
        perform(lifecycle.handle(.appLoaded))
        heldChanged()
        while true {
            if !afterRequest.isEmpty {
                let actions = afterRequest
                afterRequest = []
                perform(actions)
            }
            let now = monotonicNanoseconds()
            let graceRunning = lifecycle.mode == .retiring(graceOver: false)
            if now >= nextScanAt || (graceRunning && now >= retireAt) {
                // The grace is over once scanned past: its deadline must not stay in the wake-up set,
                // or a retiring worker waiting on a slow client would wake every millisecond.
                if graceRunning && now >= retireAt { perform(lifecycle.handle(.retireGraceOver)) }
                expireConnections(now: now)
                if let until = acceptFailures.pausedUntil {
                    if acceptFailures.resumes(now: now) { acceptPauseOver() } else { schedule(until) }
                }
            }
            if lifecycle.retiring {
                if retiringSince == nil { retiringSince = now }
                // Each turn: the master's deadline may come sooner (an immediate stop after a reload).
                if !lingering.isEmpty {
                    lingering.retiring(cutAt: retireCut(now), now: now, watch: self)
                    scheduleLingering()
                }
            }
            if lifecycle.retiring && conns.isEmpty {
                // What already arrived is heard before leaving: the master's USR1 after a group TERM, and a TERM
                // whose handler ran as the last wait returned (its pipe byte is not in that wait's events).
                handleSignals()
                if WorkerTerm.arrived && !lifecycle.toldTERM { termArrived() }
                if conns.isEmpty && afterRequest.isEmpty && offloadedTransfersOver(now: now) && lingering.isEmpty {
                    perform(lifecycle.handle(.connectionsClosed))
                }
            }
            var wake = nextScanAt
            if lifecycle.mode == .retiring(graceOver: false) { wake = min(wake, retireAt) }
            if let at = offload?.cutAt { wake = min(wake, at) }
            let event: Reactor.Event
            do {
                // Re-armed only when it moves (a scan, the retire grace): no syscall per request.
                try reactor.setDeadline(wake == .max ? nil : wake)
                event = try reactor.next()
            } catch {
                ServerLog.line("\(error)")
                _exit(1)
            }
            switch event {
            case .readable(let token, _):
                switch token {
                case Self.termToken: termArrived()
                case Self.servicesToken: ctx.services.workerQueuesReadable()
                case Self.sourceToken: ctx.sourceWatch?.changed(tell: tellMaster)
                case Self.offloadToken: offload?.takeEnded()
                default:
                    if let i = WorkerListener.index(token) {
                        if lifecycle.accepting { acceptOne(ctx.listeners[i], token: token) }
                    } else if let c = conns[Int32(truncatingIfNeeded: token)] {
                        readable(c)
                        if queueWaiting { lookAgain() }
                        ticks.pointee.untilExcessCheck &-= 1
                        if ticks.pointee.untilExcessCheck == 0 {
                            ticks.pointee.untilExcessCheck = Self.excessCheckEvery
                            shedExcess()
                        }
                    } else if lingering.holds(Int32(truncatingIfNeeded: token)) {
                        lingering.readable(Int32(truncatingIfNeeded: token), watch: self)
                    }
                }
            case .signal(let sig, _):
                signal(sig)
            case .deadline, .childExited:
                break  // deadlines are checked at the top of the loop; this reactor reaps no child
            }
        }
    }

    // MARK: connections

    private func acceptOne(_ l: WorkerListener, token: UInt64) {
        // Woken for the listener, a worker always takes a connection: EPOLLEXCLUSIVE woke it instead of another
        // idle worker, so declining would leave the connection to nobody until the next one arrives.
        let accepted: FileDescriptor?
        do { accepted = try UnixSocket.accept(l.fd, nonBlocking: true) } catch {
            acceptFailed(error)
            return
        }
        guard let fd = accepted else { return }
        // Holding no connection: no look and no rejoin (a worker serving one connection at a time, no pool,
        // never pays for them).
        guard !conns.isEmpty && !listenersLost else {
            adopt(fd.release(), from: l)
            return
        }
        // EPOLLEXCLUSIVE wakes the first idle worker in the listener's wait queue, and a worker's place there
        // is fixed when it starts watching: the first worker would take every connection that arrives while it
        // waits, and a keep-alive pool (nginx's, wrk's) would end up on one worker while the others idle. A
        // worker already holding a connection goes to the back of the queue (as a worker blocked in accept(2)
        // does), so connections rotate over the idle workers; before it serves the new connection, whose
        // client may connect again as soon as it has its answer.
        rejoinListenerQueue(l, token: token)
        // This worker looks at the listener once per round of the connections it serves: taking one connection
        // per look left the rest of a burst waiting rounds on end (2 x 1 at 64 connections: requests waited 2 s
        // and more, half the connections unanswered after 3 s). With the one just taken, it takes its fair
        // share of what waits at once and leaves the rest to the others (`AcceptShare`).
        if !listenersLost && acceptFailures.pausedUntil == nil, let look = balance.look(held: activeHeld + 1) {
            queueWaiting = look.queued > look.take
            if look.take > 0 { take(look.take) }
        }
        // The connection that woke it is served now, as before (nginx sends its request right after connecting).
        adopt(fd.release(), from: l)
    }

    /// Accepts `count` waiting connections. Their requests are served in turn with the others' (the next
    /// wait reports them), not at once: serving each as it is accepted would hold off this worker's next look
    /// for that long, and a connection accepted last would wait for all of them.
    private func take(_ count: Int) {
        let error = balance.accept(count) { adopt($0, from: $1, readNow: false) }
        // The look published what it meant to take; fewer may have been there (another worker took them).
        heldChanged()
        if let error { acceptFailed(error) }
    }

    /// accept(2) failed (`AcceptFailures`): logged; for want of fds the listeners are not watched until the
    /// pause ends (the scan at `nextScanAt` watches them again).
    private func acceptFailed(_ error: Error) {
        let now = monotonicNanoseconds()
        // Lingering closes give their fds back first: a flood of clients that neither read nor close must not keep
        // new ones out for their 5 s (the next accept is tried at once).
        if LingeringConnections.isOutOfFDs(error) && lingering.shed(watch: self) { return }
        guard let until = acceptFailures.failed(error, held: conns.count + lingering.count, now: now) else { return }
        queueWaiting = false
        for (i, l) in ctx.listeners.enumerated() { reactor.unwatch(l.fd, token: WorkerListener.token(i)) }
        schedule(until)
    }

    /// The end of an accept pause: the listeners are watched again (unless the worker stopped accepting).
    private func acceptPauseOver() {
        guard lifecycle.accepting && !listenersLost else { return }
        for (i, l) in ctx.listeners.enumerated() {
            do { try reactor.watch(l.fd, token: WorkerListener.token(i), events: Epoll.readable | Epoll.exclusive) } catch {
                listenerLost(error)
                return
            }
        }
    }

    /// Between requests while connections wait in the listen queue: takes this worker's share of them.
    private func lookAgain() {
        guard lifecycle.accepting && !listenersLost, let look = balance.look(held: activeHeld) else {
            queueWaiting = false
            return
        }
        queueWaiting = look.queued > look.take
        if look.take > 0 { take(look.take) }
    }

    /// Holding clearly more connections than the emptiest other worker (`AcceptShare.excess`), the worker answers
    /// the next request of its excess connections with `Connection: close`: their clients connect again, and
    /// the workers holding fewer take them.
    private func shedExcess() {
        guard lifecycle.accepting && !listenersLost && activeHeld >= 2 else { return }
        var n = balance.excess(held: activeHeld)
        guard n > 0 else { return }
        for c in conns.values where c.closeAfterNext && !c.countedIdle { n -= 1 }
        for c in conns.values where n > 0 && !c.closeAfterNext && !c.countedIdle {
            c.closeAfterNext = true
            n -= 1
        }
    }

    /// Tells the other workers how many connections this one holds (while it accepts).
    private func heldChanged() {
        if lifecycle.accepting && !listenersLost { balance.publish(held: activeHeld) }
    }

    /// Watches the listener again: at the back of its wait queue. The rejoin is only about balance: when
    /// epoll_ctl refuses (the per-user limit on watched fds, ENOSPC; ENOMEM), the worker keeps the connection
    /// it just accepted and the ones it holds, serves them, and asks to be replaced (it no longer hears that
    /// listener). Exiting here would reset them all.
    private func rejoinListenerQueue(_ l: WorkerListener, token: UInt64) {
        reactor.unwatch(l.fd, token: token)
        do { try reactor.watch(l.fd, token: token, events: Epoll.readable | Epoll.exclusive) } catch {
            listenerLost(error)
        }
    }

    private func listenerLost(_ error: Error) {
        listenersLost = true
        balance.withdraw()
        ServerLog.line("\(error): this worker cannot watch its listener again; it serves the connections it holds and is replaced")
        guard !recycleRequested else { return }
        recycleRequested = true
        tellMaster(.recycleListenerLost)
    }

    private func adopt(_ fd: Int32, from l: WorkerListener, readNow: Bool = true) {
        let now = monotonicNanoseconds()
        let c = Connection(fd: fd, limits: ctx.limits, now: now, uwsgi: l.uwsgiProtocol, remoteLabel: l.remoteLabel,
                           proxyProtocol: l.proxyProtocol)
        conns[fd] = c
        if lifecycle.retiring { c.closeAfterNext = true }
        // nginx writes the request right after connecting: try it now and skip an epoll round trip. Watched
        // only if it stays open after that: a connection per request (nginx without a keep-alive pool) is
        // read, answered and closed without the two epoll_ctl calls. (Not read now when taken as a share of
        // the listen queue: served in turn with the others.)
        if readNow {
            readable(c)
            guard conns[fd] === c else { return }
        }
        do { try reactor.watch(fd, token: UInt64(UInt32(bitPattern: fd))) } catch {
            conns[fd] = nil
            heldChanged()
            return
        }
        c.watched = true
        heldChanged()
        schedule(c.lastActivity + firstRequestTimeout)
        schedule(c.lastActivity + IdleConnections.after)
    }

    private var firstRequestTimeout: UInt64 { ctx.settings.headerTimeoutNanoseconds }

    private func schedule(_ at: Instant) { if at < nextScanAt { nextScanAt = at } }

    /// Closes a connection its client closed or reset (or that cannot be watched).
    private func drop(_ c: Connection) {
        // Events already read for this fd go too: the number may come back with the next accept. (A connection
        // closed before it was ever watched has none.)
        if c.watched { reactor.unwatch(c.fd, token: UInt64(UInt32(bitPattern: c.fd))) }
        conns[c.fd] = nil
        _ = idle.unmark(c)
        heldChanged()
    }

    // MARK: lingering close

    /// The worker ends `c` (after its response, or idle): it leaves the table, and `lingering` closes it.
    private func end(_ c: Connection) {
        conns[c.fd] = nil
        _ = idle.unmark(c)
        heldChanged()
        lingering.end(c, now: monotonicNanoseconds(), watch: self)
        scheduleLingering()
    }

    /// The next lingering deadline joins the scan's.
    private func scheduleLingering() {
        if let next = lingering.nearestDeadline { schedule(next) }
    }

    /// A quiet connection sent bytes: it counts again, and is looked at again by the scan.
    private func activeAgain(_ c: Connection) {
        _ = idle.unmark(c)
        heldChanged()
        schedule(c.lastActivity + IdleConnections.after)
    }

    private func readable(_ c: Connection) {
        let n = scratch.withUnsafeMutableBytes { Glibc.read(c.fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            drop(c)
            return
        }
        if n == 0 { drop(c); return }
        c.lastActivity = monotonicNanoseconds()
        if c.countedIdle { activeAgain(c) }
        // A slice of the read buffer, not a copy: nothing keeps it past the request, so the next read
        // finds the buffer unshared (were it kept, copy-on-write would copy it then).
        let keep = process(c, scratch[0..<n])
        if !keep { end(c) }
    }

    /// Parses and serves every complete request in `input`; false when the connection must close.
    private func process(_ c: Connection, _ bytes: ArraySlice<UInt8>) -> Bool {
        var input = bytes
        if c.expectsProxyHeader && c.proxyHeader != nil {
            switch c.takeProxyHeader(input) {
            case .needMore:
                if c.headStartedAt == nil {
                    c.headStartedAt = c.acceptedAt
                    schedule(c.acceptedAt + ctx.settings.headerTimeoutNanoseconds)
                }
                return true
            case .refuse(let why):
                ServerLog.line("connection closed: \(why) (--enable-proxy-protocol)")
                return false
            case .rest(let rest):
                if rest.isEmpty { return true }
                input = rest
            }
        }
        while true {
            // The uwsgi parser is looked at only on a --uwsgi-socket connection: each look at a parser stored
            // in the connection is an exclusivity check.
            switch c.speaksUwsgi ? (c.uwsgi?.parse(input) ?? c.parser.parse(input)) : c.parser.parse(input) {
            case .needMore:
                if c.headStartedAt == nil {
                    // A connection's first head is timed from accept, not from its first byte: a client
                    // that waits before sending must not get a second --header-timeout.
                    c.headStartedAt = c.requests == 0 ? c.acceptedAt : c.lastActivity
                    schedule(c.headStartedAt! + ctx.settings.headerTimeoutNanoseconds)
                }
                return true
            case .error(let e):
                try? c.writeAll(HTTPResponseWriter.errorResponse(for: e, date: DateClock.now), timeoutMilliseconds: 1000)
                log.refused(e, started: c.lastActivity)
                return false
            case .head(let head, let consumed):
                // A stop heard after the previous request (`lookAtSignals`): no request starts any more.
                if case .exited = lifecycle.mode { return false }
                c.headStartedAt = nil
                var rest = input[(input.startIndex + consumed)...]
                guard serve(c, head, rest: &rest) else { return false }
                if rest.isEmpty { return true }
                input = rest
            }
        }
    }

    /// Runs the application for one request and writes its response; false when the connection must close.
    /// (Each step is inlined: the split costs no instruction per request, checked with callgrind.)
    private func serve(_ c: Connection, _ head: HTTPRequestHead, rest: inout ArraySlice<UInt8>) -> Bool {
        // Set by the read that brought the head in, or by the end of the request before it (pipelined).
        let started = c.lastActivity
        markBusy(c, head, started: started)
        let reader = BodyReader(connection: c, head: head, limits: ctx.limits, initial: rest,
                                timeoutMilliseconds: writeTimeoutMilliseconds,
                                bodyTimeoutNanoseconds: ctx.settings.bodyTimeoutNanoseconds)
        let request = Request(head: head, body: reader, remote: c.remoteLabel,
                              workerID: ctx.id, requestID: requestIDPrefix, number: requestCounter, addresses: c.addresses,
                              cgiVariables: c.speaksUwsgi ? c.uwsgi?.variables : nil, server: self)
        // The last request before --max-requests: its response (early-started or not) says close.
        let keepRequested = head.keepAlive && !recycling.isLast(request: requestCounter)
        inHand = InHand(connection: c, version: head.version, keepAlive: keepRequested, isHead: head.isHeadMethod, started: started)
        // For the access log: why the response is not the app's, or did not complete.
        var note: String? = nil
        var appFailed = false
        // The app raised (reload-on-exception): before its response, or while producing it.
        var appRaised = false
        var response = callApp(request, note: &note, failed: &appFailed, raised: &appRaised)
        let (early, bodyComplete, drainAfter) = takeOverFromApp(response, reader: reader, rest: &rest)
        // (Asked first: it hears the signals that came while the app ran, whatever the request asked for.)
        let keepAlive = mayKeepConnection(c) && keepRequested && bodyComplete
        var result = writeResponse(&response, appFailed: appFailed, note: &note, early: early, head: head, keepAlive: keepAlive,
                                   on: c, reader: reader, rest: &rest)
        if _slowPath(drainAfter) && result.plan.keepAlive {
            if reader.finishAfterResponse() { rest = reader.leftover } else { result.plan.keepAlive = false }
        }
        if result.appRaised { appRaised = true }
        endRequest(c, request, response)
        let (served, finished) = markIdle(started: started)
        askRecyclingIfDue(served: served, appRaised: appRaised)
        if log.wants(status: response.status) { logServed(c, head, response, result, note: note, started: started) }
        waitForNextRequest(c, keepAlive: result.plan.keepAlive, finished: finished)
        // A signal that came while the app ran waits in the signalfd, which the loop reads only after this batch's
        // other ready connections: an immediate stop (INT, QUIT) would let them start requests it is meant to
        // prevent. After a request that ran long enough for one to arrive, they are looked at now (one read; a
        // hello-world request never pays it).
        if _slowPath(finished - started >= Self.signalLookAfterNanoseconds) { lookAtSignals() }
        return result.plan.keepAlive
    }

    /// The access-log line of a request `serve` answered (out of line: its arguments are built only when logging).
    @inline(never)
    private func logServed(_ c: Connection, _ head: HTTPRequestHead, _ response: borrowing Response, _ result: SentResponse,
                           note: String?, started: Instant) {
        log.write(method: head.method, path: head.target, status: response.status, bytes: result.sent, started: started,
                  note: note, head: head, headerBytes: result.headBytes, headerCount: response.headers.count,
                  viaSendfile: result.viaSendfile, cgi: c.uwsgi?.variables, peer: c.addresses, core: 0)
    }

    /// The request's start: counters, the scoreboard row, the exchange, the lifecycle, the harakiri deadline.
    @inline(__always)
    private func markBusy(_ c: Connection, _ head: HTTPRequestHead, started: Instant) {
        requestCounter += 1
        c.requests += 1
        let sb = ctx.scoreboard, slot = ctx.slot
        // The start before the state: a reader that sees busy (another worker judging whether this one is held by
        // a long request, `AcceptBalance`) must not pair it with the previous request's start.
        sb.set(slot, .requestStartNanos, Int64(started))
        sb.set(slot, .state, Scoreboard.State.busy.rawValue)
        sb.set(slot, .requestCounter, Int64(requestCounter))
        c.begin(Exchange(number: requestCounter, expectContinue: head.expectContinue))
        _ = lifecycle.handle(.requestStarted)
        sb.setRequest(slot, method: head.method, path: head.path, unlessAlready: &rowTextCell.pointer.pointee)
        let harakiri = ctx.settings.harakiriNanoseconds
        setHarakiriDeadline(harakiri > 0 ? started.saturatingAdd(harakiri) : nil)
    }

    /// Runs the app; its failure becomes a 4xx/5xx response. (Out-parameters rather than a result struct: moving
    /// a Response through one costs retains and releases per request.)
    @inline(__always)
    private func callApp(_ request: Request, note: inout String?, failed: inout Bool, raised: inout Bool) -> Response {
        do {
            return try ctx.app(request)
        } catch {
            return appFailure(error, note: &note, failed: &failed, raised: &raised)
        }
    }

    /// The response for an app that threw (out of line: `serve` stays short where it runs every request).
    @inline(never)
    private func appFailure(_ error: any Error, note: inout String?, failed: inout Bool, raised: inout Bool) -> Response {
        failed = true
        if let e = error as? RequestBodyError {
            note = e.message
            return Response(status: e.status, text: e.message + "\n")
        }
        note = "application error: \(error)"
        raised = true
        return Response(status: 500, text: "Internal Server Error\n")
    }

    /// The app has returned: the response it started early (WSGI's write()), if any, and whether the request
    /// body is consumed. From here the response is the Response's: no early start; the request stays in hand
    /// (setHarakiri from its stream) until its end.
    @inline(__always)
    private func takeOverFromApp(_ response: borrowing Response, reader: BodyReader, rest: inout ArraySlice<UInt8>) -> (EarlyResponse?, Bool, Bool) {
        let early = inHand?.early
        inHand?.appReturned = true
        // Whatever body the app left unread must be consumed before the next request can be parsed;
        // a streamed (or early-started) response may still be reading it, so it is finished after the stream.
        // What has not arrived yet is waited for only after the response (`finishAfterResponse`).
        var bodyComplete = true, drainAfter = false
        if early == nil, case .bytes = response.body {
            bodyComplete = reader.finish()
            if !bodyComplete && reader.mayCompleteAfterResponse { bodyComplete = true; drainAfter = true }
            rest = reader.leftover
        }
        return (early, bodyComplete, drainAfter)
    }

    /// Whether the worker would keep the connection after this response, signals that came while the app ran
    /// heard first.
    @inline(__always)
    private func mayKeepConnection(_ c: Connection) -> Bool {
        // Past its harakiri deadline the master has probably queued HUP behind the graceful signal:
        // read it now, so this response already says Connection: close.
        if let d = harakiriDeadline, _slowPath(monotonicNanoseconds() >= d) { handleSignals() }
        // A stop-TERM that came while the app ran: this response already says close.
        if _slowPath(WorkerTerm.arrived) && lifecycle.accepting { termArrived() }
        return lifecycle.accepting && !c.closeAfterNext
    }

    /// Writes the response in the worker's buffer (taken, so it is uniquely held while written, and given back).
    @inline(__always)
    private func writeResponse(_ response: inout Response, appFailed: Bool, note: inout String?, early: EarlyResponse?,
                               head: HTTPRequestHead, keepAlive: Bool, on c: Connection, reader: BodyReader,
                               rest: inout ArraySlice<UInt8>) -> SentResponse {
        var out = KeptBuffer.take(&responseBuffer)
        defer { KeptBuffer.giveBack(out, to: &responseBuffer) }
        return ResponseSending.send(&response, early: early, appFailed: appFailed, head: head, keepAlive: keepAlive, on: c,
                                    reader: reader, rest: &rest, buffer: &out, fieldLines: fieldLines,
                                    timeoutMilliseconds: writeTimeoutMilliseconds, note: &note, offload: offload)
    }

    /// The request is over: the app's close(), its objects refuse from now on, no harakiri.
    @inline(__always)
    private func endRequest(_ c: Connection, _ request: Request, _ response: borrowing Response) {
        response.finish?()
        request.server = nil
        inHand = nil
        _ = c.exchange(.ended)
        if harakiriDeadline != nil { setHarakiriDeadline(nil) }
    }

    /// The scoreboard row back to idle; the requests served and when.
    @inline(__always)
    private func markIdle(started: Instant) -> (served: Int64, finished: Instant) {
        let sb = ctx.scoreboard, slot = ctx.slot
        let served = sb.get(slot, .requests) + 1
        sb.set(slot, .requests, served)
        // Warmed up: the code only start-up and the first requests needed leaves the resident set.
        if _slowPath(requestCounter == Self.warmUpRequests) { dropCodePageTableEntries() }
        let finished = monotonicNanoseconds()
        sb.set(slot, .busyNanos, sb.get(slot, .busyNanos) + Int64(finished - started))
        sb.set(slot, .state, Scoreboard.State.idle.rawValue)
        return (served, finished)
    }

    /// Asks the master for a replacement once a recycling limit is reached (once).
    @inline(__always)
    private func askRecyclingIfDue(served: Int64, appRaised: Bool) {
        guard _fastPath(!recycleRequested), let limit = recycling.reached(served: served, appRaised: appRaised) else { return }
        recycleRequested = true
        tellMaster(limit)
    }

    /// A kept connection's keep-alive timer starts; the lifecycle hears the request is over.
    @inline(__always)
    private func waitForNextRequest(_ c: Connection, keepAlive: Bool, finished: Instant) {
        c.lastActivity = finished
        if keepAlive, ctx.settings.keepaliveTimeoutNanoseconds > 0 {
            schedule(c.lastActivity + ctx.settings.keepaliveTimeoutNanoseconds)
        }
        // Carried out from the loop, not here: a drain serves other connections, which must not nest in this one.
        let after = lifecycle.handle(.requestFinished)
        if _slowPath(!after.isEmpty) { afterRequest += after }
    }

    /// Closes connections past their header timeout (408) or keep-alive timeout, and, when
    /// retiring, idle keep-alive connections past the retire grace.
    private func expireConnections(now: Instant) {
        nextScanAt = .max
        let idleBefore = idle.count
        defer { if idle.count != idleBefore { heldChanged() } }
        for c in conns.values where conns[c.fd] === c {
            // A retiring worker treats a connection that never sent a byte like an idle keep-alive one:
            // a silent client must not hold up shutdown for a whole --header-timeout.
            if lifecycle.retiring && c.headStartedAt == nil {
                if now >= retireAt && !readWaitingInput(c) { end(c) }
                continue
            }
            if c.headStartedAt != nil || c.requests == 0 {
                let started = c.headStartedAt ?? c.lastActivity
                let deadline = started + ctx.settings.headerTimeoutNanoseconds
                if now >= deadline && readWaitingInput(c) { continue }
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
                    if !readWaitingInput(c) { end(c) }
                    continue
                } else {
                    schedule(c.lastActivity + idleTimeout)
                }
            }
            if let again = idle.scan(c, now: now) { schedule(again) }
        }
        lingering.expire(now: now, watch: self)
        scheduleLingering()
    }

    /// Before a connection is judged late or idle: bytes the kernel already holds for it are read and served
    /// now. They arrived while this worker was busy with another connection's request (a connection accepted
    /// before its request came is parked in epoll, and epoll is not consulted mid-request), so the wait was
    /// the worker's, not the client's; dropping the connection would reset a request nobody read. Returns
    /// whether it read any (the connection then carries on, or was closed by what it read).
    private func readWaitingInput(_ c: Connection) -> Bool {
        var byte: UInt8 = 0
        guard recv(c.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0 else { return false }
        readable(c)
        // Still open: judged again on the next pass, against what it has now (a head still incomplete past its
        // deadline is answered 408 then, unless more bytes wait again).
        if conns[c.fd] === c { schedule(monotonicNanoseconds()) }
        return true
    }

    /// When the retiring worker stops waiting for its lingering closes and offloaded transfers (`RetireCut`).
    private func retireCut(_ now: Instant) -> Instant {
        RetireCut.deadline(retiringSince: retiringSince ?? now, mercyNanoseconds: ctx.settings.workerReloadMercyNanoseconds,
                           masterKillAt: ctx.scoreboard.get(ctx.slot, .killDeadline))
    }

    private func offloadedTransfersOver(now: Instant) -> Bool {
        offload?.retiringWaitOver(now: now, cut: retireCut(now)) ?? true
    }

    /// Arms (or disarms) the timer the master watches, and publishes the deadline it checks against.
    fileprivate func setHarakiriDeadline(_ at: Instant?) {
        harakiriDeadline = at
        guard ctx.harakiriFD >= 0 else { return }
        ctx.scoreboard.set(ctx.slot, .harakiriDeadline, Int64(clamping: at ?? 0))
        SharedTimer.arm(ctx.harakiriFD, at: at)
    }

    // MARK: signals

    /// Reads the signals waiting in the signalfd (between requests, or while a request overran its
    /// harakiri deadline: the master may have queued HUP) and hands each to the lifecycle. A drain asked
    /// for mid-request is the lifecycle's to defer.
    private func handleSignals() {
        for (sig, _) in (try? reactor.takeSignals()) ?? [] { signal(sig) }
    }

    /// One signal from the reactor, handed to the lifecycle.
    private func signal(_ sig: Int32) {
        perform(lifecycle.handle(.signal(Self.lifecycleSignal(sig))))
    }

    private static func lifecycleSignal(_ sig: Int32) -> WorkerLifecycle.Signal {
        switch sig {
        case SIGUSR1: return .usr1
        case SIGHUP: return .hup
        case SIGINT: return .int
        default: return .quit
        }
    }

    /// How long a request must have run for `serve` to look at the signals before the next one starts.
    static let signalLookAfterNanoseconds: UInt64 = 1_000_000

    /// Reads the signals that came during a request and hands them to the lifecycle; what it decides is carried
    /// out from the loop (as `waitForNextRequest`'s), and a stop ends `process` before its next request.
    private func lookAtSignals() {
        for (sig, _) in (try? reactor.takeSignals()) ?? [] {
            afterRequest += lifecycle.handle(.signal(Self.lifecycleSignal(sig)))
        }
    }

    /// The SIGTERM handler wrote to its pipe (or its flag was seen mid-request).
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
                for (i, l) in ctx.listeners.enumerated() { reactor.unwatch(l.fd, token: WorkerListener.token(i)) }
                for c in conns.values { c.closeAfterNext = true }
            case .armRetireGrace:
                retireAt = monotonicNanoseconds() + Self.retireGrace
            case .drainListenQueue:
                // Connections already queued would be reset when the listener closes: take them all, on every listener.
                for l in ctx.listeners {
                    while let fd = try? UnixSocket.accept(l.fd, nonBlocking: true) { adopt(fd.release(), from: l) }
                }
            case .closeIdleConnections:
                expireConnections(now: monotonicNanoseconds())
            case .exit(let code):
                ctx.exitHandlers?()
                _exit(code)
            }
        }
    }
}

/// The worker whose connections a reactor's order closure looks up (the reactor is made before the worker
/// exists; the worker lives as long as its process).
final class ConnectionRecency {
    unowned(unsafe) var worker: Worker?
}

/// The request a worker is serving, for what its app asks while it runs.
struct InHand {
    unowned(unsafe) let connection: Connection
    // What the response head depends on (not the whole head: no references to count).
    let version: HTTPVersion
    let keepAlive: Bool
    let isHead: Bool
    let started: Instant
    /// Set once the app has returned: its response can no longer be started early.
    var appReturned = false
    /// The response the app started before returning (WSGI's write()).
    var early: EarlyResponse?
}

extension Worker: RequestServer {
    func startResponse(status: Int, reason: [UInt8]?, headers: HTTPHeaders, contentLength length: Int?) throws -> ResponseStream {
        guard let request = inHand, !request.appReturned else { throw SWSGIError("this request cannot start its response early") }
        if let early = request.early { return early.stream }
        let early = try ResponseSending.startEarly(status: status, reason: reason, headers: headers, contentLength: length, for: request,
                                               keepAlive: request.keepAlive && lifecycle.accepting && !request.connection.closeAfterNext,
                                               timeoutMilliseconds: writeTimeoutMilliseconds)
        inHand?.early = early
        return early.stream
    }

    func shortenHarakiri(to nanoseconds: UInt64) {
        guard let started = inHand?.started else { return }
        // The smaller of --harakiri and the app's limit wins.
        let at = started.saturatingAdd(nanoseconds)
        if harakiriDeadline.map({ at < $0 }) ?? true { setHarakiriDeadline(at) }
    }
}

extension Worker: LingeringWatch {
    func watchLingering(_ c: Connection) throws {
        // (Already watched unless it was ended on its first read.)
        guard !c.watched else { return }
        try reactor.watch(c.fd, token: UInt64(UInt32(bitPattern: c.fd)))
        c.watched = true
    }

    func unwatchLingering(_ c: Connection) {
        if c.watched { reactor.unwatch(c.fd, token: UInt64(UInt32(bitPattern: c.fd))) }
    }
}
