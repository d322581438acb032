import CGlibcShim
import Common
import Glibc

/// The one event loop both programs run on: epoll over tokens, the handled signals through a signalfd,
/// deadlines through one timerfd, and children reaped one per event. Callers take one `Event` at a time
/// and carry out its consequences before asking for the next, so no decision is made on stale facts.
/// Idle, it sleeps in epoll_wait with no timeout: zero wake-ups.
public final class Reactor {
    public enum Event: Equatable {
        /// A handled signal other than SIGCHLD (children come as `childExited`), with its sender's pid.
        case signal(Int32, sender: pid_t)
        /// One reaped child.
        case childExited(pid: pid_t, status: ProcessEnd)
        /// The deadline set with `setDeadline` has passed.
        case deadline
        /// A watched fd is readable (or hung up / in error): `events` is the epoll mask.
        case readable(token: UInt64, events: UInt32)
    }

    private static let signalToken: UInt64 = .max
    private static let timerToken: UInt64 = .max - 1

    private var epoll: Epoll
    private let signals: SignalFD
    private var timer: TimerFD
    /// Events read but not yet handed out, from `head` on (a worker's loop: no array made per wait). In `Cell`s,
    /// as `armed` and `reaping`: read on every `next()`, they would otherwise cost an exclusivity check each.
    private let queuedCell = Cell([Event]())
    /// `order`'s keys of one batch, kept between waits.
    private let orderSlots = Cell([(index: Int, key: UInt64)]())
    /// `order`'s places and moved events of one batch, kept between waits.
    private let orderPlaces = Cell([Int]())
    private let orderMoved = Cell([Event]())
    private let headCell = Cell(0)
    private let reapingCell = Cell(false)
    private let armedCell = Cell(Instant?.none)
    private var queued: [Event] {
        unsafeAddress { queuedCell.address }
        unsafeMutableAddress { queuedCell.pointer }
    }
    private var head: Int {
        unsafeAddress { headCell.address }
        unsafeMutableAddress { headCell.pointer }
    }
    /// SIGCHLD came in: waitpid until it reports nothing more, one child per `next()`.
    private var reaping: Bool {
        unsafeAddress { reapingCell.address }
        unsafeMutableAddress { reapingCell.pointer }
    }
    private let reapsChildren: Bool
    /// The deadline the timerfd holds now (nil: disarmed or fired): setting the same one again costs no syscall.
    private var armed: Instant? {
        unsafeAddress { armedCell.address }
        unsafeMutableAddress { armedCell.pointer }
    }
    /// When set, each batch's readable events that have a key are handed out lowest key first (the others keep
    /// their places).
    /// A worker keys its connections by when each was last served: epoll's level-triggered ready list keeps
    /// every connection it reported in its place, so one whose request came just after a wait went behind
    /// all of those and waited two rounds; least recently served first is the order their requests came in.
    /// (A `let`, given at init: reading a stored `var` would cost an exclusivity check on every wait.)
    private let readableOrder: ((UInt64) -> UInt64?)?

    /// Blocks `signals` (plus SIGCHLD when `reapChildren`) before any child exists and starts watching them.
    /// A swsgi worker does not reap: its app's children (Python's subprocess) are the app's to wait for.
    public init(signals handled: [Int32], reapChildren: Bool = true, readableOrder: ((UInt64) -> UInt64?)? = nil) throws {
        self.readableOrder = readableOrder
        epoll = try Epoll()
        reapsChildren = reapChildren
        signals = try SignalFD(Array(Set(handled + (reapChildren ? [SIGCHLD] : []))).sorted())
        timer = try TimerFD()
        queued.reserveCapacity(64)
        try epoll.add(signals.fd.raw, token: Self.signalToken)
        try epoll.add(timer.fd.raw, token: Self.timerToken)
    }

    /// Starts reporting `fd` as `.readable(token:)`. Tokens at the top of the range are the reactor's own.
    public func watch(_ fd: Int32, token: UInt64, events: UInt32 = Epoll.readable) throws {
        precondition(token < Self.timerToken, "reactor tokens above .max - 2 are reserved")
        try epoll.add(fd, token: token, events: events)
    }

    /// Stops reporting `fd`; events already read for it are dropped.
    public func unwatch(_ fd: Int32, token: UInt64) {
        epoll.remove(fd)
        forget(token: token)
    }

    /// Drops events already read for a token whose fd was closed (closing took it out of epoll).
    public func forget(token: UInt64) {
        compact()
        queued.removeAll { if case .readable(token, _) = $0 { return true } else { return false } }
    }

    /// The instant (monotonic ns) at which `.deadline` is delivered; nil: none.
    public func setDeadline(_ at: Instant?) throws {
        guard at != armed else { return }
        try timer.arm(at: at)
        armed = at
    }

    /// The handled signals that have arrived and not been handed out yet, taken now without waiting (a
    /// worker looks mid-request, or before it leaves). In arrival order.
    public func takeSignals() throws -> [(signal: Int32, sender: pid_t)] {
        var out: [(signal: Int32, sender: pid_t)] = []
        compact()
        queued.removeAll {
            if case .signal(let sig, let sender) = $0 { out.append((sig, sender)); return true }
            return false
        }
        while let (sig, sender) = try signals.next() {
            if sig == SIGCHLD { reaping = true } else { out.append((sig, sender)) }
        }
        return out
    }

    /// Drops the events already handed out from the front of the queue.
    private func compact() {
        if head > 0 {
            queued.removeFirst(head)
            head = 0
        }
    }

    /// In a forked child that will never run this reactor: close its fds (the child's own copies).
    public func closeAfterFork() {
        close(epoll.fd.raw)
        close(signals.fd.raw)
        close(timer.fd.raw)
    }

    /// Blocks until the next event.
    public func next() throws -> Event {
        while true {
            if reaping {
                if let child = try reapOne() { return .childExited(pid: child.pid, status: child.status) }
                reaping = false
            }
            if head < queued.count {
                head += 1
                return queued[head - 1]
            }
            // All handed out: empty the queue keeping its storage (no allocation per wait).
            queued.removeAll(keepingCapacity: true)
            head = 0
            let count = try epoll.waitCount(timeoutMilliseconds: -1)
            // Signals go first in the batch, in arrival order: a stop must be heard before the batch's connections
            // start requests it would not have let start.
            var signalsQueued = 0
            for i in 0..<count {
                let (token, events) = epoll.event(i)
                switch token {
                case Self.signalToken:
                    while let (sig, sender) = try signals.next() {
                        if sig == SIGCHLD {
                            if reapsChildren { reaping = true }
                        } else {
                            queued.insert(.signal(sig, sender: sender), at: signalsQueued)
                            signalsQueued += 1
                        }
                    }
                case Self.timerToken:
                    timer.acknowledge()
                    armed = nil
                    queued.append(.deadline)
                default:
                    queued.append(.readable(token: token, events: events))
                }
            }
            // (Only for a batch of two or more: reading a stored property costs an exclusivity check, the closure a
            // retain and a release; a wait that brings one event, the busy hello-world case, pays neither.)
            if count > 1, let key = readableOrder { order(by: key) }
        }
    }

    /// Puts the batch's readable events that have a key (connections) in `key` order, each keyless event (and
    /// every other event) staying where the kernel put it; nothing moves when the order already holds.
    private func order(by key: (UInt64) -> UInt64?) {
        // The keys, the places and the moved events go in buffers kept between waits (arrays made per batch were
        // mallocs and frees per wait); only a batch out of order makes more.
        let slots = orderSlots.pointer
        slots.pointee.removeAll(keepingCapacity: true)
        var previous: UInt64 = 0
        var sorted = true
        for (i, e) in queued.enumerated() {
            guard case .readable(let token, _) = e, let k = key(token) else { continue }
            if k < previous { sorted = false }
            previous = k
            slots.pointee.append((i, k))
        }
        guard !sorted else { return }
        // The places the keyed events fill, in queue order; the events then go there least key first (equal keys
        // in queue order).
        let places = orderPlaces.pointer, moved = orderMoved.pointer
        places.pointee.removeAll(keepingCapacity: true)
        moved.pointee.removeAll(keepingCapacity: true)
        for s in slots.pointee { places.pointee.append(s.index) }
        // A stable insertion sort in place: a batch is at most one epoll_wait's 64 events, and `sort` would allocate.
        slots.pointee.withUnsafeMutableBufferPointer { b in
            for j in 1..<b.count {
                let x = b[j]
                var k = j
                while k > 0 && b[k - 1].key > x.key { b[k] = b[k - 1]; k -= 1 }
                b[k] = x
            }
        }
        for s in slots.pointee { moved.pointee.append(queued[s.index]) }
        for (n, p) in places.pointee.enumerated() { queued[p] = moved.pointee[n] }
    }
}

/// waitpid(-1, WNOHANG) once: the next ended child, nil when none has ended (or there are no children).
public func reapOne() throws -> (pid: pid_t, status: ProcessEnd)? {
    while true {
        var st: Int32 = 0
        let pid = waitpid(-1, &st, WNOHANG)
        if pid > 0 { return (pid, ProcessEnd(waitStatus: st)) }
        if pid == 0 { return nil }
        if errno == EINTR { continue }
        if errno == ECHILD { return nil }
        throw SyscallError("waitpid")
    }
}
