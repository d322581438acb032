import CGlibcShim
import Glibc
import Posix

/// A worker's offload threads (uWSGI's `--offload-threads N`): hand-overs go to them round robin, and the
/// worker learns from `endedFD` (one byte per transfer that ended) when its last transfer is over, which a
/// retiring worker waits for (up to its mercy, then `cutAll`).
final class OffloadPool: @unchecked Sendable {
    /// A client that takes no byte for this long is cut (the worker's own write timeout).
    let stallNanoseconds: UInt64
    private(set) var threads: [OffloadThread] = []
    /// Under the monitor: request threads hand over too (`--threads`).
    private let monitor = Monitor()
    private var nextThread = 0
    private var active = 0
    private var broken = false
    /// Readable once a transfer has ended; the worker's loop watches it.
    let endedFD: Int32
    private let endedWrite: Int32

    /// Starts `count` threads; a thread that cannot start is logged and the worker runs with the ones that did
    /// (uWSGI's "unable to start offload thread"). Nil when none started.
    static func start(count: Int, stallNanoseconds: UInt64, workerID: Int) -> OffloadPool? {
        guard count > 0 else { return nil }
        let pool: OffloadPool
        do { pool = try OffloadPool(stallNanoseconds: stallNanoseconds) } catch {
            ServerLog.line("offload threads for worker \(workerID): \(error); the worker sends its files itself")
            return nil
        }
        for i in 0..<count {
            do {
                let t = try OffloadThread(pool: pool)
                try startThread { t.run() }
                pool.threads.append(t)
            } catch {
                ServerLog.line("unable to start offload thread \(i) for worker \(workerID): \(error)")
                break
            }
        }
        return pool.threads.isEmpty ? nil : pool
    }

    private init(stallNanoseconds: UInt64) throws {
        self.stallNanoseconds = stallNanoseconds
        (endedFD, endedWrite) = try makePipe(nonBlocking: true)
    }

    /// Transfers handed over and not ended yet.
    var activeTransfers: Int { monitor.withLock { active } }

    /// The duplicates of `socket` and `file` a thread will own and close, made before the response head goes
    /// out: a failure here (EMFILE, a failed thread) leaves the worker free to send the body itself. The caller
    /// keeps (and closes) its own fds.
    func reserve(socket: Int32, file: ResponseFile, label: String) throws -> OffloadJob {
        guard !monitor.withLock({ broken }) else { throw SWSGIError("an offload thread failed; no transfer can be handed over") }
        let s = try syscall("fcntl(F_DUPFD_CLOEXEC)", "socket") { shim_fcntl_int(socket, F_DUPFD_CLOEXEC, 0) }
        let f: Int32
        do { f = try syscall("fcntl(F_DUPFD_CLOEXEC)", "file") { shim_fcntl_int(file.fd, F_DUPFD_CLOEXEC, 0) } } catch {
            close(s)
            throw error
        }
        return OffloadJob(socket: s, file: f, offset: file.offset, count: file.count, label: label)
    }

    /// Hands a reserved `job` to a thread (round robin), which closes its fds when the transfer ends; on a
    /// failure they are closed here.
    func submit(_ job: OffloadJob) throws {
        let thread: OffloadThread? = monitor.withLock {
            guard !broken else { return nil }
            active += 1
            nextThread = (nextThread + 1) % threads.count
            return threads[nextThread]
        }
        guard let thread else {
            job.release()
            throw SWSGIError("an offload thread failed; no transfer can be handed over")
        }
        thread.submit(job)
    }

    /// From an offload thread: one transfer is over.
    func transferEnded() {
        monitor.withLock { active -= 1 }
        var byte: UInt8 = 1
        // A full pipe already says "look": EAGAIN loses nothing, the worker reads the count.
        _ = Glibc.write(endedWrite, &byte, 1)
    }

    /// From an offload thread whose loop failed: no more hand-overs (its transfers were cut).
    func threadFailed() { monitor.withLock { broken = true } }

    /// Empties the ended pipe (the worker's loop, when it is readable).
    func takeEnded() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ Glibc.read(endedFD, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// The worker's mercy is over: every thread cuts its transfers now (each logs a line and ends).
    func cutAll() { for t in threads { t.cut() } }

    /// The retiring worker's cut deadline (its loop's thread only): nil until it starts waiting, .max once cut.
    private(set) var cutAt: UInt64?

    /// A retiring worker leaves once its offloaded transfers are over: it waits for them up to `cut` (`RetireCut`:
    /// a little before the master's SIGKILL; the soonest one given), then cuts them, each with a log line, and
    /// leaves when they have ended. From the worker's loop only (`Worker` and `ThreadedWorker` alike).
    func retiringWaitOver(now: UInt64, cut: UInt64) -> Bool {
        guard activeTransfers > 0 else { return true }
        if cutAt != .max { cutAt = min(cutAt ?? .max, cut) }
        if let at = cutAt, at != .max, now >= at {
            // Once: from here the wait is for the threads to report the cut transfers ended.
            cutAt = .max
            cutAll()
        }
        return false
    }
}

/// When a retiring worker stops waiting for what it still holds (offloaded transfers, lingering closes) and ends
/// it: before the master's SIGKILL, so the end is the worker's own and logged. The master's kill comes `mercy`
/// after its signal, which the worker may hear late (a single-threaded worker reads it after the request it is
/// running): so the master's own deadline, published in the scoreboard before the signal, bounds the cut too.
enum RetireCut {
    static func deadline(retiringSince since: UInt64, mercyNanoseconds mercy: UInt64, masterKillAt: Int64) -> UInt64 {
        let margin = min(mercy / 10, 1_000_000_000)
        let own = since &+ (mercy - margin)
        guard masterKillAt > 0 else { return own }
        let kill = UInt64(masterKillAt)
        return min(own, kill > margin ? kill - margin : 0)
    }
}
