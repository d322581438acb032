/// How the socket clients connect to survives a reload: one value of the core's config, decided once from
/// the command line and the environment (never re-derived by the runner).
public enum Protection: Equatable, Sendable {
    /// hupwatch bound the listeners (`--listen`) and hands the same ones to every generation.
    case ownedListener
    /// hupwatch's own supervisor handed it the listeners (LISTEN_FDS): every generation gets them.
    case inherited
    /// Each generation binds a private path beside `publicPath`; the core has `publicPath` pointed at a
    /// generation once it is ready (`.publish`), and back at the serving one on a rollback (`.putBack`).
    case rewrite(publicPath: String)
    /// The command rebinds `path` itself; the guard keeps it leading to the serving generation's listener.
    case guardedRebind(path: String)
    /// Nothing: a path an old generation removes stays removed.
    case none

    /// Rewrite or rebind: once the path leads to the successor, the old listener gets no new connection,
    /// so what is still queued there is handed over before the old generation is told to stop.
    public var handsOverQueue: Bool {
        switch self {
        case .rewrite, .guardedRebind: return true
        default: return false
        }
    }

    public var rewrites: Bool { if case .rewrite = self { true } else { false } }
}

/// When a starting generation counts as ready: one value of the core's config.
public enum ReadinessRule: Equatable, Sendable {
    /// READY=1 on the generation's NOTIFY_SOCKET.
    case notify
    /// A probe saw the generation's own listener accept (`socket:`), or answer 2xx (`http:`).
    case probe
    /// This long after it started, whatever it says.
    case delay(nanoseconds: UInt64)
    /// READY=1 if the generation speaks sd_notify; else its listener accepting when `probe` (a path the
    /// runner can probe); else the warm-up time.
    case auto(probe: Bool)
}

/// What hupwatch has seen of a starting generation: one set of facts that the readiness rule reads.
public struct Evidence: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Sent anything on its NOTIFY_SOCKET.
    public static let spoke = Evidence(rawValue: 1)
    /// Sent READY=1.
    public static let saidReady = Evidence(rawValue: 2)
    /// A probe saw its listener accept.
    public static let accepted = Evidence(rawValue: 4)
    /// Its `delay:` or warm-up time has passed.
    public static let timeElapsed = Evidence(rawValue: 8)
}

/// The result of `.publish`: the public path leads to the generation's listener, or it could not be
/// pointed there (and whatever was at it is untouched).
public enum PublishResult: Equatable, Sendable {
    case ok
    case failed(String)
}

extension ReloadSupervisor.Config {
    /// The config for these options: the protection and readiness rule are decided here, once.
    /// `socketActivated`: hupwatch was handed listeners through LISTEN_FDS.
    public init(options o: HupwatchOptions, socketActivated: Bool) {
        self.init(gracefulTimeout: o.gracefulTimeout, readyTimeout: o.readyTimeout, reloadSignal: o.reloadSignal, onExit: o.onExit)
        if !o.listens.isEmpty {
            protection = .ownedListener
        } else if socketActivated {
            protection = .inherited
        } else if o.rewritesSocketArgument, let a = o.socketArgument {
            protection = .rewrite(publicPath: a.path)
        } else if o.guardEnabled, let p = o.socketPath {
            protection = .guardedRebind(path: p)
        } else {
            protection = .none
        }
        switch o.ready {
        case .notify: readiness = .notify
        case .socket, .http: readiness = .probe
        case .delay(let d): readiness = .delay(nanoseconds: d)
        // With a listener every generation shares, no probe can tell the new one from the old.
        case .auto: readiness = .auto(probe: o.probePath != nil && !socketActivated)
        }
    }
}
