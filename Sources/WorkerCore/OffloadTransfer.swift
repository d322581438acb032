/// One offloaded response body (uWSGI's `--offload-threads`, core/offload.c's sendfile engine): the worker
/// wrote the head and handed the socket and the file over; an offload thread sends the file's bytes without
/// blocking, one chunk each time the socket has room, then closes both. As uWSGI, the connection ends with
/// the transfer (the offload "takes over" the socket), so the head said `Connection: close`.
///
/// A value: events in (what the last sendfile did, the socket's readiness, the clock), decisions out. The
/// offload thread is its I/O edge: it performs each action and feeds the result back.
public struct OffloadTransfer: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// Waiting for the socket to have room: the stall deadline runs from the last progress.
        case waitingWritable(deadline: Instant)
        /// A sendfile of `count` bytes from `offset` is asked for; its result comes back as an event.
        case sending(offset: Int, count: Int)
        /// Every byte is queued and the sending side shut down (FIN after the data): what the client still
        /// sends (a pipelined request) is read and dropped until it closes or the deadline, because closing a
        /// socket with unread input resets it and the client loses the bytes it has not read yet (nginx's
        /// lingering close).
        case lingering(deadline: Instant)
        case finished(Outcome)
    }

    public enum Outcome: Sendable, Equatable {
        /// Every byte went out.
        case complete
        /// The client went away (reset, broken pipe, hang-up) before it had every byte.
        case clientGone(call: String, errno: Int32)
        /// The client took nothing for the whole stall timeout (`--socket-timeout`'s write side).
        case stalled(seconds: Double)
        /// The file ended before the length the head announced (it shrank): the client sees a short body.
        case fileEnded
        /// Another error of the named call.
        case failed(call: String, errno: Int32)
        /// The worker stopped and its mercy ran out before the client had every byte.
        case cutAtMercy
    }

    public enum Event: Sendable, Equatable {
        /// The socket has room (EPOLLOUT), or the transfer was just handed over.
        case writable(now: Instant)
        /// The sendfile asked for sent `bytes` (> 0).
        case sent(bytes: Int, now: Instant)
        /// The socket is full (EAGAIN).
        case wouldBlock(now: Instant)
        /// sendfile returned 0: the file has no more bytes.
        case endOfFile
        /// The call failed with `errno`.
        case failed(call: String, errno: Int32)
        /// The peer hung up or the socket reported an error (EPOLLERR/EPOLLHUP).
        case hungUp
        /// The clock passed the stall deadline.
        case deadlinePassed(now: Instant)
        /// The worker's mercy is over: stop now.
        case mercyOver
        /// The socket has input (or the peer's FIN) while lingering.
        case readable
        /// The input was read and dropped; `peerClosed`: the read saw the end (or an error) and the client is done.
        case drained(peerClosed: Bool)
    }

    public enum Action: Sendable, Equatable {
        /// Call sendfile once for `count` bytes from `offset`, and feed its result back.
        case sendfile(offset: Int, count: Int)
        /// Wait for the socket's room (or the deadline).
        case waitWritable(until: Instant)
        /// Shut the socket's sending side down and wait for its input (or the deadline).
        case shutdownAndWaitReadable(until: Instant)
        /// Read and drop what the socket holds, and feed `drained` back.
        case drain
        /// Wait for more input (or the deadline).
        case waitReadable(until: Instant)
        /// Close the socket and the file; log the outcome unless complete.
        case close(Outcome)
        /// Nothing to do (an event that no longer matters, such as a late deadline).
        case none
    }

    /// uWSGI's chunk (u_offload_sendfile_do: 128 KiB per event): one transfer does not starve the others.
    public static let chunkBytes = 128 * 1024

    public let total: Int
    public private(set) var sent = 0
    public let startOffset: Int
    public let stallNanoseconds: UInt64
    public private(set) var mode: Mode
    /// When a byte last went out (the hand-over at first): the stall deadline runs from here.
    public private(set) var lastProgressAt: Instant

    /// `count` bytes of the file from `offset`; a client that takes nothing for `stallNanoseconds` is cut.
    public init(offset: Int, count: Int, stallNanoseconds: UInt64, now: Instant) {
        startOffset = offset
        total = max(0, count)
        self.stallNanoseconds = stallNanoseconds
        lastProgressAt = now
        mode = .waitingWritable(deadline: now.saturatingAdd(stallNanoseconds))
    }

    /// The stall deadline while waiting for room; nil otherwise.
    public var deadline: Instant? {
        switch mode {
        case .waitingWritable(let d), .lingering(let d): return d
        default: return nil
        }
    }

    public var isFinished: Bool {
        if case .finished = mode { return true }
        return false
    }

    public mutating func handle(_ event: Event) -> Action {
        switch (mode, event) {
        case (.finished, _):
            return .none
        case (.lingering, .readable):
            return .drain
        case (.lingering(let d), .drained(let peerClosed)):
            return peerClosed ? finish(.complete) : .waitReadable(until: d)
        case (.lingering(let d), .deadlinePassed(let now)):
            return now >= d ? finish(.complete) : .none
        case (.lingering, .mercyOver), (.lingering, .hungUp), (.lingering, .failed):
            // Every byte was sent: whatever ends the lingering, the response is complete.
            return finish(.complete)
        case (_, .mercyOver):
            return finish(.cutAtMercy)
        case (_, .hungUp):
            return finish(.clientGone(call: "epoll", errno: 0))
        case (.waitingWritable, .writable):
            return nextChunk()
        case (.waitingWritable(let d), .deadlinePassed(let now)):
            guard now >= d else { return .none }
            return finish(.stalled(seconds: Double(stallNanoseconds) / 1e9))
        case (.sending(_, let count), .sent(let bytes, let now)):
            sent += min(bytes, count)
            lastProgressAt = now
            if sent >= total { return linger(now: now) }
            return waitForRoom()
        case (.sending, .wouldBlock):
            // No progress: the stall deadline keeps running from the last progress, not from now.
            return waitForRoom()
        case (.sending, .endOfFile):
            return finish(.fileEnded)
        case (.sending, .failed(let call, let errno)):
            return finish(Self.isClientGone(errno) ? .clientGone(call: call, errno: errno) : .failed(call: call, errno: errno))
        default:
            // An event that does not fit the mode (a readiness report while a result is awaited): nothing to do.
            return .none
        }
    }

    private mutating func nextChunk() -> Action {
        if sent >= total { return finish(.complete) }
        let offset = startOffset + sent, count = min(Self.chunkBytes, total - sent)
        mode = .sending(offset: offset, count: count)
        return .sendfile(offset: offset, count: count)
    }

    /// Back to waiting for room. The deadline moves only with progress: a client that reads nothing, however
    /// often the socket wakes us, is cut `stallNanoseconds` after its last byte.
    private mutating func waitForRoom() -> Action {
        let d = lastProgressAt.saturatingAdd(stallNanoseconds)
        mode = .waitingWritable(deadline: d)
        return .waitWritable(until: d)
    }

    /// nginx's `lingering_timeout`: a client that neither closes nor sends is not waited for longer (the
    /// worker's own lingering close waits as long).
    public static let lingerNanoseconds: UInt64 = LingeringClose.timeoutNanoseconds

    /// Every byte is queued: linger for the client's close, at most the stall timeout and `lingerNanoseconds`.
    private mutating func linger(now: Instant) -> Action {
        let d = now.saturatingAdd(min(stallNanoseconds, Self.lingerNanoseconds))
        mode = .lingering(deadline: d)
        return .shutdownAndWaitReadable(until: d)
    }

    private mutating func finish(_ outcome: Outcome) -> Action {
        mode = .finished(outcome)
        return .close(outcome)
    }

    /// The errors that mean the client is gone rather than something wrong here.
    static func isClientGone(_ errno: Int32) -> Bool {
        // EPIPE 32, ECONNRESET 104, ENOTCONN 107, ETIMEDOUT 110 (Linux numbers: WorkerCore has no Glibc).
        errno == 32 || errno == 104 || errno == 107 || errno == 110
    }
}
