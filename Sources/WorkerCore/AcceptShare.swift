import Common

/// How many of the connections waiting in the listen queue a worker takes when it looks, so the accepting
/// workers hold equal numbers of connections. Each worker serves its own connections in turn: one that holds
/// three times the connections of another makes each of them wait three times as long (issue 17: 49 and 15
/// keep-alive connections on two workers, p99 281 ms where 160 was fair).
///
/// Values in, a number out: the worker says what it holds, what the other accepting workers hold (the
/// scoreboard) and how many connections wait (the kernel's count), and accepts the number it gets. It takes up
/// to the fair share and leaves the rest to the others. What it left and the others have not taken by a look
/// `patienceNanoseconds` later (a worker stuck in a long request cannot look) it takes then, so no connection
/// waits on a worker that cannot accept. (The others take the oldest connections first, so what they took
/// since is what was left; a close among theirs only makes this worker take more, never less.)
public struct AcceptShare: Sendable, Equatable {
    public static let patienceNanoseconds: UInt64 = 100_000_000

    /// Connections this worker left in the queue, what the others held at its last look, and since when the
    /// oldest of those left have waited for the others.
    public private(set) var leftForOthers = 0
    public private(set) var othersHeldThen = 0
    public private(set) var leftAt: Instant = 0

    public init() {}

    /// Whether a request that started at `startedAt` holds its thread at `now`: it has run `patienceNanoseconds`
    /// or longer, and four times the worker's mean request time (`meanRequestNanoseconds`; an app whose every
    /// request is slow is not stuck in each of them). A worker all of whose request threads are held cannot serve a
    /// connection soon: it takes none, and the others do not count it (as room for their connections, or in the
    /// excess rule), so what they hold is not let go to a worker that cannot take it, nor new connections left to it.
    public static func holdsItsThread(startedAt: Instant, now: Instant, meanRequestNanoseconds: UInt64 = 0) -> Bool {
        let usual = meanRequestNanoseconds > UInt64.max / 4 ? UInt64.max : meanRequestNanoseconds * 4
        return now >= startedAt.saturatingAdd(max(patienceNanoseconds, usual))
    }

    /// The fair share of each of `workers` workers when `total` connections are spread over them.
    public static func fairShare(total: Int, workers: Int) -> Int {
        let w = max(1, workers)
        return (max(0, total) + w - 1) / w
    }

    /// How many of its `mine` connections a worker lets go of (answering their next request with
    /// `Connection: close`, so their clients connect again and the other workers take them), when the
    /// accepting workers hold `mine + othersHeld` between them and the emptiest other holds `othersFewest`.
    /// Keep-alive connections stay where they were taken: a split that came out uneven (a worker stuck in a long
    /// request while a load arrived, counts not yet lowered for connections a load just closed) would otherwise
    /// last as long as the clients, one worker serving most of them while another idles. Each worker serves its
    /// connections in turn, so what matters is the gap to the emptiest worker: two connections or more (a quarter
    /// of the fair share, for large shares) and this one lets go down to the fair share, or of one when it is at
    /// the fair share already (3/3/1 over three workers). One apart, or a split that is merely not exact for large
    /// counts, never churns. (Measured against the fair share, or the others' mean, 6/2, 4/1, 2/1/0 and 3/3/1
    /// splits stayed: clients of the fuller workers waited two to four times as long, or a worker idled.)
    public static func excess(mine: Int, otherWorkers: Int, othersHeld: Int, othersFewest: Int) -> Int {
        guard otherWorkers > 0, mine > 0 else { return 0 }
        let fair = fairShare(total: mine + max(0, othersHeld), workers: otherWorkers + 1)
        guard mine - max(0, othersFewest) >= max(2, fair / 4) else { return 0 }
        return mine > fair ? mine - fair : 1
    }

    /// One look at `now`: `mine` held here, `othersHeld` by `otherWorkers` other accepting workers, `queued`
    /// waiting. Returns how many to accept now (0...queued).
    public mutating func look(mine: Int, otherWorkers: Int, othersHeld: Int, queued: Int, now: Instant) -> Int {
        let queued = max(0, queued)
        let fair = Self.fairShare(total: max(0, mine) + max(0, othersHeld) + queued, workers: otherWorkers + 1)
        let share = min(queued, max(0, fair - max(0, mine)))
        let takenByOthers = max(0, othersHeld - othersHeldThen)
        let stillLeft = min(queued, max(0, leftForOthers - takenByOthers))
        let due = stillLeft > 0 && now >= leftAt &+ Self.patienceNanoseconds
        let take = max(share, due ? stillLeft : 0)
        // Left ones not yet due keep their age; otherwise what is left now starts waiting now.
        if !(stillLeft > 0 && !due) { leftAt = now }
        leftForOthers = queued - take
        othersHeldThen = othersHeld
        return take
    }
}
