/// A worker process's life as a value: what each signal from the master (or from outside) means in each
/// mode, events in, actions out; no I/O. The worker's loop turns its signalfd, its TERM pipe, its
/// deadlines and the ends of requests into `Event`s and carries out the `Action`s.
///
/// The signal rules:
/// - SIGHUP (the master's reload or recycle): stop accepting, finish the requests in hand, answer them
///   with `Connection: close`, close idle keep-alive connections after a short grace, exit 0.
/// - SIGUSR1 (the master's graceful stop): take every connection already queued on the listener (they
///   would be reset when it closes), serve them, then retire as for SIGHUP. With a request in hand the
///   drain waits for its end; the worker retires at once, so that response already says close.
/// - SIGTERM that is not harakiri's (the C handler tells them apart): what the master's TERM means, so the
///   same as SIGUSR1 (the queued connections too: when the TERM went to the whole process group, systemd's
///   KillMode=control-group or timeout(1), the workers may leave before the master's USR1 reaches them),
///   and the master is told once: it logs a group TERM as such, and replaces a worker TERMed alone.
/// - SIGINT / SIGQUIT: exit now.
/// Signals that arrive while the app is still loading (`--lazy-apps`) are kept and applied once it is up.
///
/// `requestsInHand` counts requests, not a flag: a worker running N request threads (issue 17) feeds one
/// `.requestStarted` / `.requestFinished` pair per request.
public struct WorkerLifecycle: Sendable {
    public enum Signal: Sendable, Equatable, CaseIterable { case hup, usr1, term, int, quit }

    public enum Mode: Sendable, Equatable {
        /// Forked, the app not loaded yet (`--lazy-apps` imports it here).
        case starting
        case serving
        /// Not accepting; `graceOver`: idle keep-alive connections are being closed.
        case retiring(graceOver: Bool)
        case exited(Int32)
    }

    public enum Event: Sendable, Equatable {
        /// The app is loaded: the worker can accept.
        case appLoaded
        case signal(Signal)
        case requestStarted
        case requestFinished
        /// The retire grace (for requests a proxy may already be sending on an idle connection) is over.
        case retireGraceOver
        /// The worker holds no connection any more (fed while retiring, each time its table is empty).
        case connectionsClosed
    }

    /// What a worker tells its master (8-byte records on a pipe).
    public enum MasterMessage: Int32, Sendable {
        case ready = 0
        case recycleMaxRequests = 1
        case recycleRSS = 2
        /// A SIGTERM that was not harakiri's reached this worker: it is retiring.
        case gotTERM = 3
        /// A source file of the app changed (`--py-autoreload`): reload every worker.
        case sourceChanged = 4
        /// The address space is above `--reload-on-as` after a request.
        case recycleAddressSpace = 5
        /// The app raised during a request (`--reload-on-exception`).
        case recycleException = 6
        /// epoll_ctl could not watch a listener again: the worker serves what it holds and is replaced.
        case recycleListenerLost = 7
    }

    public enum Action: Sendable, Equatable {
        case tell(MasterMessage)
        /// Stop watching the listener; answer every open connection's next response with close.
        case stopAccepting
        /// Accept every connection queued on the listener now (they are served, then the worker leaves).
        case drainListenQueue
        /// Arm the retire grace's deadline.
        case armRetireGrace
        /// Close connections that are idle between requests.
        case closeIdleConnections
        case exit(Int32)
    }

    public private(set) var mode: Mode = .starting
    public private(set) var requestsInHand = 0
    /// SIGUSR1 came with a request in hand: drain the listen queue when requests end.
    public private(set) var drainPending = false
    /// The master has been told about a TERM (once per worker).
    public private(set) var toldTERM = false
    /// Signals kept while `.starting`, applied in order at `.appLoaded`.
    private var early: [Signal] = []

    public init() {}

    public var accepting: Bool { mode == .serving }
    public var retiring: Bool { if case .retiring = mode { return true } else { return false } }

    public mutating func handle(_ event: Event) -> [Action] {
        if case .exited = mode { return [] }
        switch event {
        case .appLoaded:
            guard mode == .starting else { return [] }
            mode = .serving
            var actions: [Action] = [.tell(.ready)]
            let kept = early
            early = []
            for sig in kept { actions += handle(.signal(sig)) }
            return actions
        case .signal(let sig):
            return signal(sig)
        case .requestStarted:
            requestsInHand += 1
            return []
        case .requestFinished:
            requestsInHand = max(0, requestsInHand - 1)
            guard drainPending, requestsInHand == 0 else { return [] }
            drainPending = false
            return [.drainListenQueue] + retire()
        case .retireGraceOver:
            guard case .retiring(false) = mode else { return [] }
            mode = .retiring(graceOver: true)
            return [.closeIdleConnections]
        case .connectionsClosed:
            guard retiring, requestsInHand == 0, !drainPending else { return [] }
            mode = .exited(0)
            return [.exit(0)]
        }
    }

    private mutating func signal(_ sig: Signal) -> [Action] {
        if sig == .int || sig == .quit {
            mode = .exited(0)
            return [.exit(0)]
        }
        if mode == .starting {
            early.append(sig)
            return []
        }
        switch sig {
        case .hup:
            return retire()
        case .term:
            var actions: [Action] = []
            if !toldTERM {
                toldTERM = true
                actions.append(.tell(.gotTERM))
            }
            return actions + drainThenRetire()
        case .usr1:
            return drainThenRetire()
        case .int, .quit:
            return []
        }
    }

    /// With a request in hand the drain waits for its end (it serves other connections); the worker stops
    /// accepting now, so that response already says close.
    private mutating func drainThenRetire() -> [Action] {
        if requestsInHand > 0 {
            drainPending = true
            return retire()
        }
        return [.drainListenQueue] + retire()
    }

    private mutating func retire() -> [Action] {
        guard mode == .serving else { return [] }
        mode = .retiring(graceOver: false)
        return [.stopAccepting, .armRetireGrace]
    }
}
