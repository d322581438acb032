import Common

/// What a worker does when accept(2) fails. The connection stays in the listen queue and the listener stays
/// readable, so a worker that just went back to its wait was woken again at once: with its fd table full
/// (EMFILE, or ENFILE system-wide) it spun at most of a core, silently, for as long as the table stayed full.
/// For want of resources the worker stops watching its listeners for `pauseNanoseconds` (nginx's
/// accept_mutex_delay; other workers take the connections meanwhile, and its own connections free fds as they
/// close); any failure is logged, the first at once and then at most one line per `logEveryNanoseconds` with
/// the count of those not logged.
public struct AcceptPause: Sendable, Equatable {
    public static let pauseNanoseconds: UInt64 = 500_000_000
    public static let logEveryNanoseconds: UInt64 = 10_000_000_000

    /// Not accepting until then.
    public private(set) var until: Instant?
    private var loggedAt: Instant?
    private var unlogged = 0

    public init() {}

    public struct Decision: Sendable, Equatable {
        /// Stop watching the listeners until `until` (nil: go on accepting).
        public var pauseUntil: Instant?
        /// Log the failure, with the count of failures not logged since the last line (nil: stay silent).
        public var logWithUnlogged: Int?
    }

    /// accept(2) failed at `now`; `exhausted`: for want of resources the next accept would meet again at once
    /// (fds, socket buffers, memory).
    public mutating func failed(exhausted: Bool, now: Instant) -> Decision {
        var d = Decision(pauseUntil: nil, logWithUnlogged: nil)
        if exhausted {
            let end = now &+ Self.pauseNanoseconds
            until = end
            d.pauseUntil = end
        }
        if let last = loggedAt, now < last &+ Self.logEveryNanoseconds {
            unlogged += 1
        } else {
            d.logWithUnlogged = unlogged
            unlogged = 0
            loggedAt = now
        }
        return d
    }

    /// True once at the end of a pause (watch the listeners again).
    public mutating func resumes(now: Instant) -> Bool {
        guard let end = until, now >= end else { return false }
        until = nil
        return true
    }
}
