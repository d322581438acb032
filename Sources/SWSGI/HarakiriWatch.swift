import Glibc
import HTTP
import Posix
import SWSGIConfig
import WorkerCore

/// The edge of `HarakiriNotice` in a `ThreadedWorker`: a thread of its own that sleeps on a timerfd until
/// the notice asks for a look, and then, shortly before the master's harakiri kill, answers every request
/// the kill would cut: a 5xx with `Connection: close` where the response has not started (504 for a request
/// past its own deadline, 503 for the others), a close where it has, and a 503 for each request queued for a
/// thread. A thread of its own, not the main loop: the main thread runs Python's signal handlers and can wait
/// on the GIL for ever when a request holds it in C; this thread never touches Python.
///
/// The notice changes only under the worker's monitor (request threads publish their deadlines there). Each
/// connection is written under its own I/O lock, where the request thread marks its response started before
/// its first byte: so the worker's 5xx and the thread's response can never both go out.
final class HarakiriWatch {
    /// Under the worker's monitor.
    var notice: HarakiriNotice
    let timerFD: Int32
    unowned let worker: ThreadedWorker
    /// This thread's own (an access log caches its time stamp: not shared between threads).
    let log: AccessLog

    init(worker: ThreadedWorker, settings: ServerOptions) throws {
        self.worker = worker
        notice = HarakiriNotice(.init(graceNanoseconds: settings.harakiriGracefulTimeoutNanoseconds,
                                      mayBeHeld: settings.harakiriGracefulQueueThreshold > 0))
        timerFD = try SharedTimer.create()
        log = AccessLog(settings: settings, workerID: worker.ctx.id, remote: worker.ctx.remoteLabel)
    }

    /// The nearest harakiri deadline of the running requests changed. Holds the worker's monitor.
    func nearestChangedLocked(_ deadline: Instant?) {
        guard deadline != notice.nearest else { return }
        for case .armLook(let at) in notice.handle(.nearestDeadline(deadline), now: monotonicNanoseconds()) {
            SharedTimer.arm(timerFD, at: at)
        }
    }

    /// What is answered: a thread's request (`number` > 0) or a request queued for a thread.
    struct Target {
        let connection: Connection
        let number: UInt64
        let thread: Int?
        let method: String
        let path: String
        let started: Instant
        let overdue: Bool
    }

    func loop() -> Never {
        while true {
            var p = pollfd(fd: timerFD, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, -1) < 0 {
                if errno != EINTR {
                    ServerLog.line("swsgi worker \(worker.ctx.id): \(SyscallError("poll", context: "harakiri timer")): request threads are no longer answered for before a harakiri")
                    while true { pause() }
                }
                continue
            }
            SharedTimer.acknowledge(timerFD)
            let ctx = worker.ctx
            let fired = ctx.scoreboard.get(ctx.slot, .harakiriFiredFor) != 0
            let due: (killAt: Instant, targets: [Target])? = worker.monitor.withLock {
                var answer: Instant?
                for action in notice.handle(.lookDue(fired: fired), now: monotonicNanoseconds()) {
                    switch action {
                    case .armLook(let at): SharedTimer.arm(timerFD, at: at)
                    case .answerAll(let killAt): answer = killAt
                    }
                }
                return answer.map { ($0, worker.takeDoomedLocked(killAt: $0)) }
            }
            if let due { answer(due.targets, killAt: due.killAt) }
        }
    }

    private func answer(_ targets: [Target], killAt: Instant) {
        let now = monotonicNanoseconds()
        let inMilliseconds = (killAt - min(killAt, now)) / 1_000_000
        // A lock held past half the margin belongs to a thread blocked on its socket: the connection is shut
        // then, which ends that wait (the client sees the end of the connection).
        let tryUntil = killAt - min(killAt, notice.config.marginNanoseconds / 2)
        for t in targets {
            let c = t.connection
            let outcome: Outcome = c.io.withLock(tryingUntil: tryUntil) { decide(t) } ?? .unreachable
            let who = t.thread.map { "thread \($0 + 1)" } ?? "queued"
            let running = (now - min(t.started, now)) / 1_000_000
            let what: String
            switch outcome {
            case .answered(let status): what = "answered \(status)"
            case .closed: what = "response already started: connection closed"
            case .unreachable: what = "socket busy in its thread: connection closed"
            case .finished: continue
            }
            ServerLog.line("HARAKIRI worker \(worker.ctx.id) (pid \(getpid())) is killed in \(inMilliseconds) ms: \(t.method) \(t.path) (\(who), running \(running) ms) \(what)")
            if case .answered(let status) = outcome {
                log.write(method: t.method, path: t.path, status: status, bytes: HTTPResponseWriter.errorBody(status: status).count,
                                 started: t.started, note: "harakiri: the worker is killed in \(inMilliseconds) ms")
            }
        }
        // The queued ones are this thread's: handed back to the loop, which closes them. The loop wakes either
        // way: it stops accepting (connections left in the listen queue go to the other workers or the
        // replacement) and answers each new request at once.
        worker.monitor.withLock {
            for t in targets where t.thread == nil { worker.finishedLocked(.init(connection: t.connection, keepAlive: false, rest: [])) }
            worker.wakeLoopLocked()
        }
    }

    /// A request the loop parsed while the kill is near: answered 503 at once (not queued for a thread).
    /// The caller (the main thread, whose access log this writes to) closes the connection.
    func answerNew(_ c: Connection, method: String, path: String, started: Instant) {
        Self.sendOnce(HTTPResponseWriter.errorResponse(status: 503, date: DateClock.now), on: c.fd)
        ServerLog.line("HARAKIRI worker \(worker.ctx.id) (pid \(getpid())) is about to be killed: \(method) \(path) answered 503")
        worker.log.write(method: method, path: path, status: 503, bytes: HTTPResponseWriter.errorBody(status: 503).count,
                         started: started, note: "harakiri: the worker is about to be killed")
    }

    enum Outcome { case answered(Int), closed, unreachable, finished }

    /// Under the connection's I/O lock: what the request's state allows, and its I/O.
    private func decide(_ t: Target) -> Outcome {
        let c = t.connection
        let phase: Exchange.Phase
        if t.thread == nil {
            phase = .appRunning
        } else if c.exchange.number == t.number {
            phase = c.exchange.phase
        } else {
            phase = .ended
        }
        switch phase {
        case .ended:
            return .finished
        case .responseStarted:
            shutdown(c.fd, Int32(SHUT_RDWR))
            return .closed
        case .appRunning:
            let status = t.overdue ? 504 : 503
            Self.sendOnce(HTTPResponseWriter.errorResponse(status: status, date: DateClock.now), on: c.fd)
            // Unread input would make the kill's close a reset, which can cost the client the 5xx.
            var scratch = [UInt8](repeating: 0, count: 16384)
            var drained = 0
            while drained < 1 << 20 {
                let n = scratch.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n <= 0 { break }
                drained += n
            }
            // The request's thread (if it ever runs again) finds the connection ended: its writes fail.
            shutdown(c.fd, Int32(SHUT_RDWR))
            return .answered(status)
        }
    }

    /// A few hundred bytes on a socket whose response has not started: its buffer has room. Never waits.
    static func sendOnce(_ bytes: [UInt8], on fd: Int32) {
        bytes.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
