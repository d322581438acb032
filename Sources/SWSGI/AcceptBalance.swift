import Glibc
import Posix
import WorkerCore

/// A worker's side of `AcceptShare`: it publishes how many connections it holds in its scoreboard row,
/// and when it looks at the listen queue it reads the other accepting workers' rows and the kernel's queue
/// length, and asks `AcceptShare` how many to take. (Only looks cost system calls: one per listener.)
final class AcceptBalance {
    let scoreboard: Scoreboard
    let slot: Int
    let listeners: [WorkerListener]
    private var share = AcceptShare()

    init(scoreboard: Scoreboard, slot: Int, listeners: [WorkerListener]) {
        self.scoreboard = scoreboard
        self.slot = slot
        self.listeners = listeners
    }

    /// The worker accepts and holds `held` connections (counted by the others' looks).
    func publish(held: Int) { scoreboard.set(slot, .acceptingHeld, Int64(held) + 1) }

    /// The worker no longer accepts (retiring, listeners lost): the others stop counting it.
    func withdraw() { scoreboard.set(slot, .acceptingHeld, 0) }

    /// How many waiting connections to take now, holding `held`, and how many wait; nil when the kernel tells
    /// no queue length.
    func look(held: Int) -> (take: Int, queued: Int, workers: Int)? {
        var queued = 0
        for l in listeners {
            guard let q = l.queued() else { return nil }
            queued += q
        }
        let now = monotonicNanoseconds()
        let (others, othersHeld, _) = othersAccepting(now: now)
        let take = share.look(mine: held, otherWorkers: others, othersHeld: othersHeld, queued: queued, now: now)
        // Published before accepting: a worker looking meanwhile counts them as taken (the accepts correct it).
        if take > 0 { publish(held: held + take) }
        return (take, queued, others + 1)
    }

    /// The other accepting workers, the connections they hold (their scoreboard rows), and the fewest any one of
    /// them holds; a single-threaded worker held by a long request does not count (`threadsHeld(row:now:)`).
    private func othersAccepting(now: Instant) -> (workers: Int, held: Int, fewest: Int) {
        var others = 0, othersHeld = 0, fewest = Int.max
        for i in 0..<scoreboard.capacity where i != slot {
            let v = scoreboard.get(i, .acceptingHeld)
            if v > 0 && !threadsHeld(row: i, now: now) {
                others += 1
                othersHeld += Int(v - 1)
                fewest = min(fewest, Int(v - 1))
            }
        }
        return (others, othersHeld, others > 0 ? fewest : 0)
    }

    /// A single-threaded worker in a request that has run well past its usual time (`AcceptShare.holdsItsThread`,
    /// its mean request time read from its row) cannot take a connection until that request ends. (A threaded
    /// worker withdraws from the share itself while every thread is held: its rows stamp each request with
    /// the head's arrival, which a job's wait in the queue makes look old.)
    private func threadsHeld(row i: Int, now: Instant) -> Bool {
        guard scoreboard.threads <= 1, scoreboard.get(i, .state) == Scoreboard.State.busy.rawValue else { return false }
        let requests = scoreboard.get(i, .requests), busyNanos = scoreboard.get(i, .busyNanos)
        let mean = requests > 0 && busyNanos > 0 ? UInt64(busyNanos / requests) : 0
        return AcceptShare.holdsItsThread(startedAt: Instant(max(0, scoreboard.get(i, .requestStartNanos))), now: now,
                                          meanRequestNanoseconds: mean)
    }

    /// How many of the `held` connections to let go of (`AcceptShare.excess`).
    func excess(held: Int) -> Int {
        let (others, othersHeld, fewest) = othersAccepting(now: monotonicNanoseconds())
        return AcceptShare.excess(mine: held, otherWorkers: others, othersHeld: othersHeld, othersFewest: fewest)
    }

    /// Accepts up to `count` connections, from each listener in turn; each is handed to `adopt`.
    /// Returns accept(2)'s error, which ends the taking (for `AcceptFailures`).
    func accept(_ count: Int, _ adopt: (Int32, WorkerListener) -> Void) -> Error? {
        var taken = 0
        for l in listeners where taken < count {
            while taken < count {
                let accepted: FileDescriptor?
                do { accepted = try UnixSocket.accept(l.fd, nonBlocking: true) } catch { return error }
                guard let fd = accepted else { break }
                adopt(fd.release(), l)
                taken += 1
            }
        }
        return nil
    }
}

/// The I/O edge of `AcceptPause`, for both worker loops: classifies accept(2)'s error and logs.
struct AcceptFailures {
    private(set) var pause = AcceptPause()

    /// accept(2) failed with `error` while the worker holds `held` connections; returns when to watch the
    /// listeners again if the worker must stop watching them now.
    mutating func failed(_ error: Error, held: Int, now: Instant) -> Instant? {
        let e = (error as? SyscallError)?.errno ?? 0
        let exhausted = e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM
        let d = pause.failed(exhausted: exhausted, now: now)
        if let unlogged = d.logWithUnlogged {
            let what = exhausted
                ? "this worker holds \(held) connections and stops accepting for \(AcceptPause.pauseNanoseconds / 1_000_000) ms (the others take the queue meanwhile)"
                    + (e == EMFILE ? "; raise the open-files limit (--max-fd, LimitNOFILE=, ulimit -n) if this recurs" : "")
                : "the connection is dropped"
            ServerLog.line("\(error): \(what)" + (unlogged > 0 ? " (\(unlogged) more since the last line)" : ""))
        }
        return d.pauseUntil
    }

    mutating func resumes(now: Instant) -> Bool { pause.resumes(now: now) }
    var pausedUntil: Instant? { pause.until }
}
