import Common

/// The connections a worker ends (after a response, or idle) and closes in stages, as nginx's lingering close
/// and RFC 9112 §9.6 do: a TCP socket closed while its client still sends (a request pipelined behind a
/// `Connection: close` answer that arrives after the close) is answered by the kernel with a reset, which
/// destroys the response bytes not yet delivered to a client that reads slowly. So unless the client has
/// acknowledged every byte already, the sending side is shut down (the FIN follows the queued bytes) and what
/// the client still sends is read and dropped until it closes, or until a deadline.
///
/// A value: the worker's loop feeds what the kernel and the clock report and carries out the decisions. Every
/// connection lingers for the same time, so they fall due in the order they began; a retiring worker brings
/// every deadline forward to its cut (before the master's kill at its mercy).
public struct LingeringClose: Sendable, Equatable {
    /// nginx's `lingering_timeout`, here for the whole wait, as an offload thread's (`OffloadTransfer`): a client
    /// that neither closes nor stops sending is not waited for longer.
    public static let timeoutNanoseconds: UInt64 = 5_000_000_000

    public enum Event: Sendable, Equatable {
        /// The worker ends connection `fd`. `unacknowledgedBytes`: what the client's TCP has not acknowledged yet
        /// (SIOCOUTQ); 0 on a Unix socket, whose sent bytes are in the client's queue already.
        case ending(fd: Int32, unacknowledgedBytes: Int, now: Instant)
        /// The shutdown or the watch of `fd` failed: nothing can be waited for.
        case failed(fd: Int32)
        /// `fd` has input, or its client closed or reset it.
        case readable(fd: Int32)
        /// What `fd` held was read and dropped; `clientClosed`: the read saw the end (or an error).
        case drained(fd: Int32, clientClosed: Bool)
        /// The clock (the worker's timer, set to `nearestDeadline`).
        case clock(now: Instant)
        /// The worker retires: no connection lingers past `cutAt`.
        case retiring(cutAt: Instant, now: Instant)
        /// The worker is out of fds (accept failed with EMFILE or ENFILE): every lingering connection is closed now,
        /// as nginx reuses its lingering connections first, rather than refusing new clients for up to 5 s.
        case fdsExhausted
    }

    public enum Action: Sendable, Equatable {
        /// Shut `fd`'s sending side down and watch its input.
        case shutdownAndWatch(fd: Int32)
        /// Read what `fd` holds (one bounded read) and drop it; feed `drained` back.
        case drain(fd: Int32)
        /// Stop watching `fd` and close it.
        case close(fd: Int32)
    }

    /// One lingering connection, in the order they began. `serial` tells it from an earlier connection that had
    /// the same fd number and whose entry is still queued.
    private struct Entry: Sendable, Equatable {
        let fd: Int32
        let deadline: Instant
        let serial: UInt64
    }

    private var lingering: [Int32: Entry] = [:]
    /// Every entry begun, deadlines in order; those of connections closed meanwhile are skipped at the front.
    private var order = FIFOQueue<Entry>()
    private var serials: UInt64 = 0
    /// The retiring worker's cut, once known.
    public private(set) var cutAt: Instant?

    public init() {}

    public var count: Int { lingering.count }
    public var isEmpty: Bool { lingering.isEmpty }
    public func lingers(_ fd: Int32) -> Bool { lingering[fd] != nil }

    /// When the next connection is due (the worker's timer); nil when none lingers.
    public var nearestDeadline: Instant? {
        guard let front = order.first else { return nil }
        return min(front.deadline, cutAt ?? .max)
    }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .ending(let fd, let unacknowledged, let now):
            // The fd stays open while it lingers, so no new connection can have its number: a repeat is a
            // caller's mistake, and the connection already lingering is left as it is.
            guard lingering[fd] == nil else { return [] }
            // Everything acknowledged: a reset can no longer cost the client a byte (RFC 9112 §9.6).
            if unacknowledged <= 0 { return [.close(fd: fd)] }
            if let cut = cutAt, now >= cut { return [.close(fd: fd)] }
            serials &+= 1
            let entry = Entry(fd: fd, deadline: now.saturatingAdd(Self.timeoutNanoseconds), serial: serials)
            lingering[fd] = entry
            order.append(entry)
            return [.shutdownAndWatch(fd: fd)]
        case .failed(let fd):
            return end(fd)
        case .readable(let fd):
            return lingering[fd] == nil ? [] : [.drain(fd: fd)]
        case .drained(let fd, let clientClosed):
            return clientClosed ? end(fd) : []
        case .clock(let now):
            return expire(now: now)
        case .retiring(let cut, let now):
            cutAt = min(cutAt ?? .max, cut)
            return expire(now: now)
        case .fdsExhausted:
            // Oldest first, as the timer would have closed them.
            return lingering.values.sorted { $0.serial < $1.serial }.flatMap { end($0.fd) }
        }
    }

    /// Closes every connection due at `now`, oldest first.
    private mutating func expire(now: Instant) -> [Action] {
        var actions: [Action] = []
        while let front = order.first, now >= min(front.deadline, cutAt ?? .max) {
            // (The front is always a lingering connection; were it not, it is skipped rather than looped on.)
            if lingering[front.fd] == front { actions += end(front.fd) } else { _ = order.popFirst(); skipEnded() }
        }
        return actions
    }

    /// `fd` stops lingering: closed.
    private mutating func end(_ fd: Int32) -> [Action] {
        guard lingering.removeValue(forKey: fd) != nil else { return [] }
        skipEnded()
        return [.close(fd: fd)]
    }

    /// Drops the front entries of connections no longer lingering, so the front is the nearest deadline.
    private mutating func skipEnded() {
        while let front = order.first, lingering[front.fd] != front { _ = order.popFirst() }
    }
}
