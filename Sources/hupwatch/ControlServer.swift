import Glibc
import Posix

/// hupwatch's control socket: `control` in its private folder, mode 0600, found by `hupwatch reload|status|stop`
/// through the status file or /proc. One line in, lines out:
///
///     reload  ->  accepted ID            (then, once reload ID is over)  succeeded ID MS  |  failed ID REASON
///             ->  refused REASON
///     status  ->  ready=1|ready=0, then the status document, then a summary; closed
///     stop    ->  stopping; the connection stays open until hupwatch exits (EOF: it is gone)
///
/// Each caller gets the outcome of the reload its own request started or joined (a request during a
/// reload joins the one queued after it), so concurrent callers are never confused.
final class ControlServer {
    let path: String
    private(set) var fd: Int32
    /// Connected callers by fd: what they sent so far, and what they wait for.
    private(set) var clients: [Int32: Client] = [:]
    static let maxClients = 256
    /// A caller that has not sent its request by then is dropped: a hung client must not hold a slot.
    static let silenceNanoseconds: UInt64 = 2 * nanosecondsPerSecond

    struct Client {
        var received: [UInt8] = []
        var waitingFor: Int?
        var waitingForExit = false
        /// Until the request line is in.
        var silentUntil: Instant?
    }

    /// The next instant a silent caller must be dropped.
    var nextDeadline: Instant? { clients.values.compactMap(\.silentUntil).min() }

    func dropSilentClients(now: Instant, closed: inout [Int32]) {
        for (client, c) in clients {
            if let until = c.silentUntil, until <= now {
                reply(client, "error no request within \(formatDuration(Self.silenceNanoseconds))\n")
                drop(client, &closed)
            }
        }
    }

    enum Request: Equatable {
        case reload(client: Int32)
        case status(client: Int32)
        case stop(client: Int32)
    }

    init(folder: String) throws {
        path = folder + "/control"
        let socket = try UnixSocket.listen(path: path, backlog: 16, mode: 0o600)
        try socket.setNonBlocking()
        fd = socket.release()
    }

    /// Binds the path again after its folder was removed: the old listener is unreachable without it.
    /// The caller re-registers `fd`.
    func rebind() throws {
        let socket = try UnixSocket.listen(path: path, backlog: 16, mode: 0o600)
        try socket.setNonBlocking()
        close(fd)
        fd = socket.release()
    }

    /// Accepts waiting callers; returns their fds to watch.
    func accept() -> [Int32] {
        var out: [Int32] = []
        while let conn = try? UnixSocket.accept(fd, nonBlocking: true) {
            if clients.count >= Self.maxClients {
                reply(conn.raw, "refused too many control connections\n")
                continue
            }
            let c = conn.release()
            clients[c] = Client(silentUntil: monotonicNanoseconds() + Self.silenceNanoseconds)
            out.append(c)
        }
        return out
    }

    /// Reads what `client` sent; a whole line becomes a request. Nil while the line is incomplete, or when
    /// the caller is gone or spoke nonsense (then it is closed and its fd returned in `closed`).
    func read(_ client: Int32, closed: inout [Int32]) -> Request? {
        guard var c = clients[client] else { return nil }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            // The caller went away (a reload --wait that gave up): nothing more to tell it.
            drop(client, &closed)
            return nil
        }
        if n < 0 { return nil }
        if c.waitingFor != nil || c.waitingForExit { return nil }
        c.received += buf[..<n]
        guard let newline = c.received.firstIndex(of: UInt8(ascii: "\n")) else {
            if c.received.count > 64 {
                reply(client, "error request too long\n")
                drop(client, &closed)
            } else {
                clients[client] = c
            }
            return nil
        }
        let line = String(decoding: c.received[..<newline], as: UTF8.self)
        c.received = []
        c.silentUntil = nil
        clients[client] = c
        switch line {
        case "reload": return .reload(client: client)
        case "status": return .status(client: client)
        case "stop": return .stop(client: client)
        default:
            reply(client, "error unknown request (reload, status or stop)\n")
            drop(client, &closed)
            return nil
        }
    }

    func accepted(_ client: Int32, id: Int) {
        clients[client]?.waitingFor = id
        reply(client, "accepted \(id)\n")
    }

    func refused(_ client: Int32, reason: String, closed: inout [Int32]) {
        reply(client, "refused \(oneLine(reason))\n")
        drop(client, &closed)
    }

    /// Tells everyone waiting for reload `id` how it ended, and closes them.
    func finished(id: Int, succeeded: Bool, reason: String, milliseconds: UInt64, closed: inout [Int32]) {
        for (client, c) in clients where c.waitingFor == id {
            reply(client, succeeded ? "succeeded \(id) \(milliseconds)\n" : "failed \(id) \(oneLine(reason))\n")
            drop(client, &closed)
        }
    }

    func answerStatus(_ client: Int32, ready: Bool, document: String, summary: String, closed: inout [Int32]) {
        reply(client, "ready=\(ready ? 1 : 0)\n" + document + summary)
        drop(client, &closed)
    }

    func stopping(_ client: Int32) {
        clients[client]?.waitingForExit = true
        reply(client, "stopping\n")
    }

    /// At exit: whoever still waits for a reload learns it never completed.
    func closeAll(reason: String) {
        for (client, c) in clients {
            if let id = c.waitingFor { reply(client, "failed \(id) \(oneLine(reason))\n") }
            close(client)
        }
        clients = [:]
        close(fd)
        unlink(path)
    }

    private func drop(_ client: Int32, _ closed: inout [Int32]) {
        clients[client] = nil
        closed.append(client)
        close(client)
    }

    /// Best effort and non-blocking: a few hundred bytes fit any socket buffer; a caller that reads
    /// nothing loses its answer, never stalls hupwatch.
    private func reply(_ client: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }

    private func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
