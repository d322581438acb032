import Common

/// accept(2) can fail while connections wait: no descriptor left (EMFILE, ENFILE), no memory (ENOBUFS, ENOMEM).
/// The connection stays queued and the listener stays readable, so a worker watching it level-triggered is woken
/// again at once, forever (10,000 failed accepts a second at full CPU). After a failure the worker stops watching
/// its listeners and tries again `pauseNanoseconds` later (nginx pauses its accepts the same way); the queued
/// connections wait in the kernel meanwhile, and the other workers take them if they can.
///
/// Values in, decisions out: the worker says when an accept failed and asks when to watch again; it logs the
/// failures this returns (the first, then at most one line per `logIntervalNanoseconds` with the count since).
public struct AcceptPause: Sendable, Equatable {
    public static let pauseNanoseconds: UInt64 = 100_000_000
    public static let logIntervalNanoseconds: UInt64 = 10_000_000_000

    /// While paused: when to watch the listeners again.
    public private(set) var resumeAt: Instant?
    private var loggedAt: Instant?
    /// Failures not logged since the last line.
    private var unlogged = 0

    public init() {}

    /// An accept failed at `now`: the listeners are left until `resumeAt`. `log` says whether to log this one, and
    /// `alsoFailed` how many failed since the last line logged.
    public mutating func failed(now: Instant) -> (resumeAt: Instant, log: Bool, alsoFailed: Int) {
        let at = now.saturatingAdd(Self.pauseNanoseconds)
        resumeAt = at
        if let last = loggedAt, now < last.saturatingAdd(Self.logIntervalNanoseconds) {
            unlogged += 1
            return (at, false, 0)
        }
        loggedAt = now
        defer { unlogged = 0 }
        return (at, true, unlogged)
    }

    /// Whether the pause is over at `now` (true once per pause: the caller watches its listeners again).
    public mutating func resumeDue(now: Instant) -> Bool {
        guard let at = resumeAt, now >= at else { return false }
        resumeAt = nil
        return true
    }

    /// The worker stopped accepting for good (retiring): no pause to end.
    public mutating func cancel() { resumeAt = nil }
}
