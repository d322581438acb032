import CGlibcShim
import Glibc
import Posix
// MSG_DONTWAIT: in a release (whole-module) build the constant is found only through the shim module, whose
// header includes sys/socket.h too (a debug build finds it through Glibc).
import CGlibcShim
import Common
import SWSGIConfig

/// What the stats socket reports: per worker pid, state, requests, the running request and its age,
/// respawns, harakiris, RSS; and the listen queue as the kernel counts it.
struct StatsSnapshot {
    struct WorkerStats {
        let id: Int
        let pid: Int32
        let state: String
        let requests: Int
        let runningRequest: String?
        let runningForMilliseconds: UInt64?
        let respawns: Int
        let harakiris: Int
        let rssBytes: Int?
        /// Its request threads (`--threads` > 1); empty otherwise.
        var cores: [CoreStats] = []
    }
    /// One request thread of a worker (uWSGI's "cores").
    struct CoreStats {
        let id: Int
        let busy: Bool
        let requests: Int
        let runningRequest: String?
        let runningForMilliseconds: UInt64?
    }
    let masterPID: Int32
    let listenQueue: Int?
    let listenQueueMax: Int?
    let workers: [WorkerStats]
    /// The `--cache2` caches' counters, and each mule's pid and respawns (the master's services).
    var caches: [SharedCache.Figures] = []
    var mules: [(id: Int, pid: Int32, respawns: Int)] = []

    func json() -> String {
        let q = jsonQuoted
        func opt<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "null" }
        let ws = workers.map { w in
            "{\"id\":\(w.id),\"pid\":\(w.pid),\"status\":\(q(w.state)),\"requests\":\(w.requests),"
                + "\"request\":\(w.runningRequest.map(q) ?? "null"),\"request_age_ms\":\(opt(w.runningForMilliseconds)),"
                + "\"respawn_count\":\(w.respawns),\"harakiri_count\":\(w.harakiris),\"rss\":\(opt(w.rssBytes))"
                + (w.cores.isEmpty ? "}" : ",\"cores\":[\(w.cores.map(coreJSON).joined(separator: ","))]}")
        }
        func coreJSON(_ c: CoreStats) -> String {
            "{\"id\":\(c.id),\"status\":\(q(c.busy ? "busy" : "idle")),\"requests\":\(c.requests),"
                + "\"request\":\(c.runningRequest.map(q) ?? "null"),\"request_age_ms\":\(opt(c.runningForMilliseconds))}"
        }
        return "{\"version\":\"swsgi \(packageVersion)\",\"pid\":\(masterPID),\"listen_queue\":\(opt(listenQueue)),"
            + "\"listen_queue_max\":\(opt(listenQueueMax)),\"workers\":[\(ws.joined(separator: ","))],"
            + "\"caches\":[\(caches.map(cacheJSON).joined(separator: ","))],\"mules\":[\(mules.map(muleJSON).joined(separator: ","))]}\n"
    }

    private func cacheJSON(_ f: SharedCache.Figures) -> String {
        "{\"name\":\(jsonQuoted(f.name)),\"capacity\":\(f.capacity),\"items\":\(f.items),\"hits\":\(f.hits),\"misses\":\(f.misses),"
            + "\"refusals\":\(f.refusedKey + f.refusedValue + f.refusedFull),\"refused_key_too_large\":\(f.refusedKey),"
            + "\"refused_value_too_large\":\(f.refusedValue),\"refused_full\":\(f.refusedFull),\"recoveries\":\(f.recoveries)}"
    }

    private func muleJSON(_ m: (id: Int, pid: Int32, respawns: Int)) -> String {
        "{\"id\":\(m.id),\"pid\":\(m.pid),\"respawn_count\":\(m.respawns)}"
    }

    /// The same figures in the Prometheus text exposition format.
    func prometheus() -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ rows: [(String, String)]) {
            out += "# HELP swsgi_\(name) \(help)\n# TYPE swsgi_\(name) \(type)\n"
            for (labels, v) in rows { out += "swsgi_\(name)\(labels) \(v)\n" }
        }
        func l(_ w: WorkerStats) -> String { "{worker=\"\(w.id)\",pid=\"\(w.pid)\"}" }
        metric("listen_queue", "gauge", "Connections waiting in the listen queue.", [("", opt(listenQueue))])
        metric("listen_queue_max", "gauge", "The listen queue's backlog limit.", [("", opt(listenQueueMax))])
        metric("workers", "gauge", "Live worker processes.", [("", "\(workers.count)")])
        metric("worker_busy", "gauge", "1 while the worker runs a request.", workers.map { (l($0), $0.state == "busy" ? "1" : "0") })
        metric("worker_requests_total", "counter", "Requests served by the worker.", workers.map { (l($0), "\($0.requests)") })
        metric("worker_request_age_seconds", "gauge", "Age of the running request.", workers.map { (l($0), "\(Double($0.runningForMilliseconds ?? 0) / 1000)") })
        metric("worker_respawns_total", "counter", "Times this worker slot was respawned.", workers.map { (l($0), "\($0.respawns)") })
        metric("worker_harakiri_total", "counter", "Requests killed by harakiri in this slot.", workers.map { (l($0), "\($0.harakiris)") })
        metric("worker_rss_bytes", "gauge", "Resident memory of the worker.", workers.map { (l($0), opt($0.rssBytes)) })
        func c(_ f: SharedCache.Figures) -> String { "{cache=\"\(f.name)\"}" }
        if !caches.isEmpty {
            metric("cache_items", "gauge", "Entries in the cache.", caches.map { (c($0), "\($0.items)") })
            metric("cache_hits_total", "counter", "Lookups that found a live entry.", caches.map { (c($0), "\($0.hits)") })
            metric("cache_misses_total", "counter", "Lookups that found nothing.", caches.map { (c($0), "\($0.misses)") })
            metric("cache_refusals_total", "counter", "Writes refused: key or value too large, or cache full.",
                   caches.map { (c($0), "\($0.refusedKey + $0.refusedValue + $0.refusedFull)") })
        }
        return out
    }

    private func opt<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "NaN" }
}

/// `--stats PATH`: a Unix socket answering like uWSGI's stats server (JSON written to a client that
/// sends nothing); an HTTP GET gets the JSON as an HTTP response, `GET /metrics` gets Prometheus text.
final class StatsServer {
    let fd: Int32
    let path: String
    let inode: ino_t
    /// `--vacuum false`: the socket file stays at exit.
    private var keepsPathAtExit = false

    init(path: String, vacuum: Bool = true) throws {
        let sock = try UnixSocket.listen(path: path, backlog: 16, mode: 0o600)
        try sock.setNonBlocking()
        self.path = path
        keepsPathAtExit = !vacuum
        inode = UnixSocket.inode(atPath: path) ?? 0  // the file's inode, for removing only our own path
        fd = sock.release()
    }

    /// `--stats HOST:PORT`: the same server on TCP (uWSGI's usual `stats = 127.0.0.1:9191`).
    init(tcp address: HTTPSocketAddress) throws {
        let sock = try TCPSocket.listen(host: address.host, port: address.port, backlog: 16)
        try sock.setNonBlocking()
        path = ""
        inode = 0
        fd = sock.release()
    }

    deinit {
        for p in pending { close(p.fd) }
        if !keepsPathAtExit, !path.isEmpty, UnixSocket.inode(atPath: path) == inode { unlink(path) }
    }

    /// Clients accepted and waiting for their request (or for 20 ms of silence, then raw JSON).
    /// Kept in the master's poll so a stats client never holds up harakiri or reaping.
    private(set) var pending: [(fd: Int32, deadline: UInt64)] = []
    static let silenceNanoseconds: UInt64 = 20_000_000

    var nextDeadline: UInt64? { pending.map(\.deadline).min() }

    /// Takes every waiting client into `pending`.
    func acceptClients(now: UInt64) {
        while let conn = try? UnixSocket.accept(fd, nonBlocking: true) {
            pending.append((conn.release(), now + Self.silenceNanoseconds))
        }
    }

    /// Answers the pending clients that sent a request (`readable`) or stayed silent past their deadline.
    func answerDue(readable: Set<Int32>, now: UInt64, snapshot: () -> StatsSnapshot) {
        let due = pending.filter { readable.contains($0.fd) || $0.deadline <= now }
        guard !due.isEmpty else { return }
        pending.removeAll { p in due.contains { $0.fd == p.fd } }
        let snap = snapshot()
        for (client, _) in due {
            var buf = [UInt8](repeating: 0, count: 1024)
            let n = max(0, buf.withUnsafeMutableBytes { Glibc.read(client, $0.baseAddress, $0.count) })
            let request = String(decoding: buf[0..<n], as: UTF8.self)
            let reply: String
            if request.hasPrefix("GET /metrics") {
                reply = http(snap.prometheus(), type: "text/plain; version=0.0.4")
            } else if request.hasPrefix("GET ") {
                reply = http(snap.json(), type: "application/json")
            } else {
                reply = snap.json()
            }
            // Best effort and non-blocking: the reply fits a socket buffer; a client that reads nothing loses it.
            _ = Array(reply.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            close(client)
        }
    }

    private func http(_ body: String, type: String) -> String {
        "HTTP/1.0 200 OK\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    }
}
