import CGlibcShim
import Glibc
import Posix
import WorkerCore

/// What a worker loop lends its `LingeringConnections`: its epoll set.
protocol LingeringWatch: AnyObject {
    /// Watches `c`'s input (level-triggered, its fd as token, as while it was served) until it is closed.
    func watchLingering(_ c: Connection) throws
    /// Stops watching `c`; events already read for it are dropped.
    func unwatchLingering(_ c: Connection)
}

/// The connections a worker has ended and closes in stages, in its own event loop (both `Worker` and
/// `ThreadedWorker`): `LingeringClose` decides, this carries it out (the shutdown, the reads that drop what the
/// client still sends, the close). Kept out of the loop's connection table, they count nowhere in the fair
/// share and hold up no accept; their objects stay here, keeping their fds (and fd numbers) until closed.
final class LingeringConnections {
    private var state = LingeringClose()
    private var table = ConnectionTable()

    var isEmpty: Bool { state.isEmpty }
    var count: Int { state.count }
    /// When the next one is due: the loop's timer includes it.
    var nearestDeadline: Instant? { state.nearestDeadline }
    func holds(_ fd: Int32) -> Bool { table[fd] != nil }

    /// The worker ends `c`, already out of its table (after a response, or idle): what has arrived is dropped,
    /// and the close waits for the client unless it has every byte already.
    func end(_ c: Connection, now: Instant, watch: some LingeringWatch) {
        c.discardUnreadInput()
        // The offload thread ends a connection whose body it sends (closing it in stages itself): a shutdown here
        // would cut its transfer, so only the worker's own fd goes.
        guard !c.offloaded else {
            watch.unwatchLingering(c)
            return
        }
        table[c.fd] = c
        carryOut(.ending(fd: c.fd, unacknowledgedBytes: c.unacknowledgedBytes(), now: now), watch)
    }

    /// `fd` has input, or its client closed or reset it.
    func readable(_ fd: Int32, watch: some LingeringWatch) { carryOut(.readable(fd: fd), watch) }

    /// Closes the connections past their deadline (the loop's timer).
    func expire(now: Instant, watch: some LingeringWatch) {
        if let due = state.nearestDeadline, now >= due { carryOut(.clock(now: now), watch) }
    }

    /// The worker retires: every connection is closed by `cut` (`RetireCut`: before the master's kill, as its
    /// offloaded transfers are). Given again as it moves (the soonest holds).
    func retiring(cutAt cut: Instant, now: Instant, watch: some LingeringWatch) {
        carryOut(.retiring(cutAt: cut, now: now), watch)
    }

    /// Out of fds: every lingering connection is closed now (the cheapest fds to give back; nginx reuses its
    /// lingering connections first too). True when there were any, so accepting can go on at once.
    func shed(watch: some LingeringWatch) -> Bool {
        guard !state.isEmpty else { return false }
        carryOut(.fdsExhausted, watch)
        return true
    }

    /// Whether `error` is accept(2) running out of fds, the process's or the system's.
    static func isOutOfFDs(_ error: Error) -> Bool {
        guard let e = error as? SyscallError else { return false }
        return e.errno == EMFILE || e.errno == ENFILE
    }

    private func carryOut(_ event: LingeringClose.Event, _ watch: some LingeringWatch) {
        for action in state.handle(event) {
            switch action {
            case .shutdownAndWatch(let fd):
                guard let c = table[fd] else { continue }
                // The FIN follows the queued response bytes. (ENOTCONN: the client has reset the connection already.)
                guard shutdown(fd, Int32(SHUT_WR)) == 0 else {
                    carryOut(.failed(fd: fd), watch)
                    continue
                }
                do { try watch.watchLingering(c) } catch { carryOut(.failed(fd: fd), watch) }
            case .drain(let fd):
                carryOut(.drained(fd: fd, clientClosed: Self.readAndDrop(fd)), watch)
            case .close(let fd):
                guard let c = table[fd] else { continue }
                watch.unwatchLingering(c)
                // The loop's last reference: the connection's deinit closes the fd.
                table[fd] = nil
            }
        }
    }

    /// What one wake-up reads and drops at most: a client that keeps sending is read in turn with the worker's
    /// other connections.
    static let drainBytesPerWakeup = 65536

    /// Reads what `fd` holds and drops it, up to `drainBytesPerWakeup`. True when a read saw the client's close
    /// or an error.
    private static func readAndDrop(_ fd: Int32) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16384) { buffer in
            var budget = drainBytesPerWakeup
            while budget > 0 {
                let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if n > 0 {
                    budget -= n
                    continue
                }
                if n == 0 { return true }
                if errno == EINTR { continue }
                return errno != EAGAIN
            }
            return false
        }
    }
}
