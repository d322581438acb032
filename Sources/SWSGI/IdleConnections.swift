import Common

/// Keep-alive connections that sent nothing for `after` (a client done for now, the spare connections of
/// nginx's pool) cost their worker no turn, so the held count the other workers see (`AcceptBalance`) and the
/// excess rule leave them out: counted in full, 24 quiet connections on one worker pushed every active client
/// onto the other (8/0, or 6/2 with 25 answers each against 73). The workers' expiry scans mark them; their
/// next byte or their close unmarks them.
struct IdleConnections {
    static let after: UInt64 = 500_000_000
    private(set) var count = 0

    /// At a scan, for a keep-alive connection between requests: marks it once it has been quiet for `after`;
    /// otherwise returns when to look at it again.
    mutating func scan(_ c: Connection, now: Instant) -> Instant? {
        if c.countedIdle { return nil }
        let due = c.lastActivity &+ Self.after
        guard now >= due else { return due }
        c.countedIdle = true
        count += 1
        return nil
    }

    /// `c` sent bytes again, or closes: no longer counted idle. True when it was.
    mutating func unmark(_ c: Connection) -> Bool {
        guard c.countedIdle else { return false }
        c.countedIdle = false
        count -= 1
        return true
    }
}
