/// When a worker with request threads answers for the requests the master's harakiri kill would cut.
///
/// Harakiri kills the whole worker (as uWSGI does): at the deadline without `--harakiri-graceful-timeout`,
/// at the end of the grace with it. The kill would drop every other thread's request and every request
/// queued in the worker with no response at all. So shortly before the kill (`marginNanoseconds`), the
/// worker answers them itself: a 5xx for each request whose response has not started, a close for each
/// one whose response has. The master's kill time is not moved: a stuck worker still dies on time.
///
/// Values in, decisions out: the nearest harakiri deadline of the worker's running requests, and the
/// looks its timer asks for (with whether the master has fired: the scoreboard mark). No clock, no I/O.
public struct HarakiriNotice: Sendable, Equatable {
    public struct Config: Sendable, Equatable {
        /// `--harakiri-graceful-timeout`: 0 means SIGKILL at the deadline.
        public var graceNanoseconds: UInt64
        /// `--harakiri-queue-threshold` is set: the master may hold a harakiri while the listen queue is short.
        public var mayBeHeld: Bool
        /// How long before the expected kill the worker answers.
        public var marginNanoseconds: UInt64
        /// How often to look whether a held harakiri has fired (the master's own recheck period).
        public var recheckNanoseconds: UInt64

        public init(graceNanoseconds: UInt64, mayBeHeld: Bool, marginNanoseconds: UInt64 = HarakiriNotice.defaultMarginNanoseconds,
                    recheckNanoseconds: UInt64 = 20_000_000) {
            self.graceNanoseconds = graceNanoseconds
            self.mayBeHeld = mayBeHeld
            self.marginNanoseconds = marginNanoseconds
            self.recheckNanoseconds = recheckNanoseconds
        }
    }

    /// 50 ms: the answering takes microseconds; the rest is room for a loaded machine's scheduling.
    public static let defaultMarginNanoseconds: UInt64 = 50_000_000

    public enum Mode: Sendable, Equatable {
        /// No kill is expected yet: a look is due `marginNanoseconds` before the earliest one possible.
        case calm
        /// A request ran past its deadline `since` (the master fires at it unless the queue threshold holds it):
        /// with a grace, the kill comes at `since` + grace at the earliest.
        case overdue(since: Instant)
        /// The deadline passed but the master has not fired (held by the queue threshold): looked at again
        /// every `recheckNanoseconds`, next at `nextLook`.
        case awaitingFire(nextLook: Instant)
        /// The master fired: the kill is expected at `at`.
        case killExpected(at: Instant)
        /// Answered: every request in flight was answered, and each one that starts before `killAt` is
        /// answered at once instead of being served.
        case answered(killAt: Instant)
    }

    public enum Event: Sendable, Equatable {
        /// The nearest harakiri deadline of the running requests changed (nil: none runs, or none has one).
        case nearestDeadline(Instant?)
        /// The look armed earlier is due. `fired`: the master has marked a harakiri for this worker.
        case lookDue(fired: Bool)
    }

    public enum Action: Sendable, Equatable {
        /// Arm the look timer at this time (nil: disarm).
        case armLook(at: Instant?)
        /// Answer every request in flight or queued now (the kill is expected at `killAt`).
        case answerAll(killAt: Instant)
    }

    public let config: Config
    public private(set) var mode: Mode = .calm
    public private(set) var nearest: Instant?
    /// The look time armed last (to arm only on a change: one syscall less per request).
    public private(set) var armed: Instant?

    public init(_ config: Config) { self.config = config }

    /// A request starting now is answered at once (the worker is about to be killed), not served.
    public var answersNewRequests: Bool {
        if case .answered = mode { return true }
        return false
    }

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .nearestDeadline(let d):
            let previous = nearest
            nearest = d
            switch mode {
            case .calm:
                // With a grace, a request that ended (or was interrupted) after its deadline still brings
                // the kill at that deadline + grace once the master has fired: the look stays anchored there.
                if config.graceNanoseconds > 0, let p = previous, p <= now, d.map({ $0 > p }) ?? true { mode = .overdue(since: p) }
            case .answered(let killAt) where config.graceNanoseconds == 0:
                // No grace: the kill comes at the deadline only if that request still runs then.
                if d.map({ $0 > killAt }) ?? true { mode = .calm }
            default:
                break
            }
        case .lookDue(let fired):
            actions += look(fired: fired, now: now)
        }
        let at = lookTime()
        if at != armed {
            armed = at
            actions.append(.armLook(at: at))
        }
        return actions
    }

    private mutating func look(fired: Bool, now: Instant) -> [Action] {
        guard let due = lookTime(), now >= due else { return [] }
        let grace = config.graceNanoseconds
        switch mode {
        case .calm:
            guard let d = nearest else { return [] }
            if grace == 0 { return answer(killAt: d) }
            mode = .overdue(since: d)
            return look(fired: fired, now: now)
        case .overdue(let since):
            // The master marks the worker before it signals: fired means the grace runs from about `since`.
            if fired { return answer(killAt: since.saturatingAdd(grace)) }
            mode = stillOverdue(now) ? .awaitingFire(nextLook: now.saturatingAdd(config.recheckNanoseconds)) : .calm
            return []
        case .awaitingFire:
            if fired {
                // Fired within the last recheck period: the kill comes a grace after that at the earliest.
                mode = .killExpected(at: (now - min(now, config.recheckNanoseconds)).saturatingAdd(grace))
                return look(fired: fired, now: now)
            }
            // Still held; or the request ended before the master fired, and it never will for it.
            mode = stillOverdue(now) ? .awaitingFire(nextLook: now.saturatingAdd(config.recheckNanoseconds)) : .calm
            return []
        case .killExpected(let at):
            return answer(killAt: at)
        case .answered:
            return []
        }
    }

    private mutating func answer(killAt: Instant) -> [Action] {
        mode = .answered(killAt: killAt)
        return [.answerAll(killAt: killAt)]
    }

    /// When the next look is due (nil: nothing to look at, no wake-up).
    public func lookTime() -> Instant? {
        let margin = config.marginNanoseconds, grace = config.graceNanoseconds
        switch mode {
        case .calm:
            guard let d = nearest else { return nil }
            // Without a grace the master kills at the deadline, unless the queue threshold may hold it:
            // then the kill time cannot be known in advance, and nothing is answered.
            if grace == 0 { return config.mayBeHeld ? nil : d - min(d, margin) }
            return d.saturatingAdd(grace) - min(d.saturatingAdd(grace), margin)
        case .overdue(let since):
            let k = since.saturatingAdd(grace)
            return k - min(k, margin)
        case .awaitingFire(let next):
            return next
        case .killExpected(let at):
            return at - min(at, margin)
        case .answered:
            return nil
        }
    }

    /// A running request is past its deadline.
    private func stillOverdue(_ now: Instant) -> Bool { nearest.map { $0 <= now } ?? false }
}
