import CGlibcShim
import Glibc
import Posix
import WorkerCore

/// What a worker hands an offload thread: its own duplicates of the socket and the file (closed by the
/// thread when the transfer ends), the region to send, and what to name it in a log line.
struct OffloadJob: @unchecked Sendable {
    let socket: Int32
    let file: Int32
    let offset: Int
    let count: Int
    /// `GET /path`, for the lines about a transfer that did not complete.
    let label: String

    /// Closes the duplicates of a job no thread took.
    func release() {
        Glibc.close(socket)
        Glibc.close(file)
    }
}

/// One offload thread (uWSGI's `uwsgi_offload_loop`): its own epoll, a pipe on which the worker's hand-overs
/// arrive, and the transfers in flight, each an `OffloadTransfer` value that this loop feeds with what
/// sendfile(2) and epoll report. It sleeps in epoll_wait with no timeout while it has nothing to send, and
/// otherwise only until the nearest stall deadline: no wake-up when idle.
final class OffloadThread: @unchecked Sendable {
    private let pool: OffloadPool
    /// Hand-overs and the mercy's cut, under the monitor; the pipe wakes the loop for them.
    private let monitor = Monitor()
    private var incoming: [OffloadJob] = []
    private var cutRequested = false
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// The thread's own: touched by its loop only.
    private var epoll: Epoll
    private var transfers: [Int32: (job: OffloadJob, state: OffloadTransfer)] = [:]

    private static let wakeToken = UInt64.max
    /// Room to write, and the errors. Not EPOLLRDHUP: a client that shut down its sending side may still read.
    /// While lingering: the client's input and its close.
    private static let lingerEvents = UInt32(EPOLLIN.rawValue) | UInt32(EPOLLRDHUP.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLHUP.rawValue)
    private static let socketEvents = UInt32(EPOLLOUT.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLHUP.rawValue)

    init(pool: OffloadPool) throws {
        self.pool = pool
        (wakeRead, wakeWrite) = try makePipe(nonBlocking: true)
        epoll = try Epoll()
        try epoll.add(wakeRead, token: Self.wakeToken)
    }

    /// Queues `job` (from the worker's thread, or a request thread).
    func submit(_ job: OffloadJob) {
        monitor.withLock { incoming.append(job) }
        wake()
    }

    /// The worker's mercy is over: every transfer in flight is cut (and logged) at once.
    func cut() {
        monitor.withLock { cutRequested = true }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        // A full pipe already holds a wake-up: EAGAIN loses nothing.
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    func run() -> Never {
        while true { turn() }
    }

    /// One wait and what it brought. (Kept out of `run`: Swift 6.3's optimizer crashed in CopyPropagation
    /// on the whole loop in one `-> Never` function.)
    private func turn() {
        let now = monotonicNanoseconds()
        let count: Int
        do { count = try epoll.waitCount(timeoutMilliseconds: timeoutMilliseconds(now: now)) } catch {
            stopForever(error)
        }
        var handedOver = false
        for i in 0..<count {
            let (token, events) = epoll.event(i)
            // Taken after this batch: a new transfer must not get an event meant for a closed fd of the same number.
            if token == Self.wakeToken { handedOver = true; continue }
            let fd = Int32(truncatingIfNeeded: token)
            guard transfers[fd] != nil else { continue }
            if events & UInt32(EPOLLIN.rawValue) != 0 {
                step(fd, .readable)
            } else if events & UInt32(EPOLLOUT.rawValue) != 0 {
                step(fd, .writable(now: monotonicNanoseconds()))
            } else {
                step(fd, .hungUp)
            }
        }
        if handedOver { takeIncoming() }
        cutOverdue(now: monotonicNanoseconds())
    }

    /// Until the nearest transfer's deadline; -1 (no timeout) when none has one.
    private func timeoutMilliseconds(now: Instant) -> Int32 {
        var nearest: Instant = .max
        for (_, t) in transfers { if let d = t.state.deadline { nearest = min(nearest, d) } }
        guard nearest != .max else { return -1 }
        return Int32(min((nearest &- min(nearest, now)) / 1_000_000 + 1, 60_000))
    }

    private func cutOverdue(now: Instant) {
        var overdue: [Int32] = []
        for (fd, t) in transfers {
            if let d = t.state.deadline, now >= d { overdue.append(fd) }
        }
        for fd in overdue { step(fd, .deadlinePassed(now: now)) }
    }

    /// The thread cannot wait any more: its transfers are cut, and hand-overs are refused from now on.
    private func stopForever(_ error: any Error) -> Never {
        ServerLog.line("offload thread: \(error); its transfers are cut")
        for fd in Array(transfers.keys) { step(fd, .mercyOver) }
        pool.threadFailed()
        while true { pause() }
    }

    /// New hand-overs, and the mercy's cut.
    private func takeIncoming() {
        var byte = [UInt8](repeating: 0, count: 64)
        while byte.withUnsafeMutableBytes({ Glibc.read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
        let (jobs, cut) = monitor.withLock {
            defer { incoming = [] }
            return (incoming, cutRequested)
        }
        for job in jobs { start(job) }
        if cut { for fd in Array(transfers.keys) { step(fd, .mercyOver) } }
    }

    private func start(_ job: OffloadJob) {
        let now = monotonicNanoseconds()
        transfers[job.socket] = (job, OffloadTransfer(offset: job.offset, count: job.count,
                                                      stallNanoseconds: pool.stallNanoseconds, now: now))
        do { try epoll.add(job.socket, token: UInt64(UInt32(bitPattern: job.socket)), events: Self.socketEvents) } catch {
            // Not watched, so it could never go on: ended here, logged with the call that failed.
            let state = transfers[job.socket]!.state
            finish(job, state, .failed(call: "epoll_ctl(ADD)", errno: (error as? SyscallError)?.errno ?? EINVAL))
            return
        }
        // The socket is most likely writable now: send the first chunk without an epoll round trip.
        step(job.socket, .writable(now: now))
    }

    /// Feeds `event` to the transfer on `fd` and carries out what it decides, until it waits or ends.
    private func step(_ fd: Int32, _ event: OffloadTransfer.Event) {
        var event = event
        while let entry = transfers[fd] {
            var state = entry.state
            let action = state.handle(event)
            transfers[fd] = (entry.job, state)
            switch action {
            case .none, .waitWritable, .waitReadable:
                return
            case .shutdownAndWaitReadable:
                // FIN after the queued data; from now on only the client's input (or its close) matters.
                if shutdown(fd, Int32(SHUT_WR)) != 0 { event = .failed(call: "shutdown", errno: errno); continue }
                do { try epoll.modify(fd, token: UInt64(UInt32(bitPattern: fd)), events: Self.lingerEvents) } catch {
                    event = .failed(call: "epoll_ctl(MOD)", errno: (error as? SyscallError)?.errno ?? EINVAL)
                    continue
                }
                return
            case .drain:
                var buffer = [UInt8](repeating: 0, count: 16384)
                var peerClosed = false
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if n > 0 { continue }
                    if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
                    peerClosed = true
                    break
                }
                event = .drained(peerClosed: peerClosed)
            case .sendfile(let offset, let count):
                var position = off_t(offset)
                let n = shim_sendfile(fd, entry.job.file, &position, count)
                let e = errno
                if n > 0 { event = .sent(bytes: n, now: monotonicNanoseconds()) }
                else if n == 0 { event = .endOfFile }
                else if e == EAGAIN || e == EINTR { event = .wouldBlock(now: monotonicNanoseconds()) }
                else { event = .failed(call: "sendfile", errno: e) }
            case .close(let outcome):
                finish(entry.job, state, outcome)
                return
            }
        }
    }

    private func finish(_ job: OffloadJob, _ state: OffloadTransfer, _ outcome: OffloadTransfer.Outcome) {
        epoll.remove(job.socket)
        transfers[job.socket] = nil
        Glibc.close(job.socket)
        Glibc.close(job.file)
        if let why = Self.describe(outcome) {
            ServerLog.line("offloaded response to \(job.label) cut after \(state.sent) of \(state.total) bytes: \(why)")
        }
        pool.transferEnded()
    }

    /// The log text for a transfer that did not complete; nil when it did.
    static func describe(_ outcome: OffloadTransfer.Outcome) -> String? {
        switch outcome {
        case .complete: return nil
        case .clientGone(let call, let e): return e == 0 ? "the client hung up (\(call))" : "the client is gone: \(SyscallError(call, errno: e))"
        case .stalled(let seconds): return "the client read nothing for \(seconds) s (--write-timeout)"
        case .fileEnded: return "the file ended early (it shrank after the head was sent)"
        case .failed(let call, let e): return "\(SyscallError(call, errno: e))"
        case .cutAtMercy: return "the worker stopped and its --worker-reload-mercy ran out"
        }
    }
}
