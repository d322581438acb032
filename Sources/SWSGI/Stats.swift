import Glibc
import Posix

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
    }
    let masterPID: Int32
    let listenQueue: Int?
    let listenQueueMax: Int?
    let workers: [WorkerStats]

    func json() -> String {
        func q(_ s: String) -> String {
            "\"" + s.unicodeScalars.map { c -> String in
                switch c {
                case "\"": return "\\\""
                case "\\": return "\\\\"
                default: return c.value < 0x20 ? "?" : String(c)
                }
            }.joined() + "\""
        }
        func opt<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "null" }
        let ws = workers.map { w in
            "{\"id\":\(w.id),\"pid\":\(w.pid),\"status\":\(q(w.state)),\"requests\":\(w.requests),"
                + "\"request\":\(w.runningRequest.map(q) ?? "null"),\"request_age_ms\":\(opt(w.runningForMilliseconds)),"
                + "\"respawn_count\":\(w.respawns),\"harakiri_count\":\(w.harakiris),\"rss\":\(opt(w.rssBytes))}"
        }
        return "{\"version\":\"swsgi 1.0.0\",\"pid\":\(masterPID),\"listen_queue\":\(opt(listenQueue)),"
            + "\"listen_queue_max\":\(opt(listenQueueMax)),\"workers\":[\(ws.joined(separator: ","))]}\n"
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
        return out
    }

    private func opt<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "NaN" }
}

/// `--stats PATH`: a Unix socket answering like uWSGI's stats server (JSON written on connect);
/// an HTTP GET gets the JSON as an HTTP response, `GET /metrics` gets Prometheus text.
final class StatsServer {
    let fd: Int32
    let path: String
    let inode: ino_t

    init(path: String) throws {
        let sock = try UnixSocket.listen(path: path, backlog: 16, mode: 0o600)
        try sock.setNonBlocking()
        self.path = path
        inode = UnixSocket.inode(atPath: path) ?? 0  // the file's inode, for removing only our own path
        fd = sock.release()
    }

    deinit {
        if UnixSocket.inode(atPath: path) == inode { unlink(path) }
    }

    /// Answers every waiting client. A client that sends nothing within 20 ms is a raw-JSON reader.
    func answer(_ snapshot: StatsSnapshot) {
        while let conn = try? UnixSocket.accept(fd) {
            var buf = [UInt8](repeating: 0, count: 1024)
            var n = 0
            if waitReadable(conn.raw, timeoutMilliseconds: 20) {
                n = max(0, buf.withUnsafeMutableBytes { Glibc.read(conn.raw, $0.baseAddress, $0.count) })
            }
            let request = String(decoding: buf[0..<n], as: UTF8.self)
            let reply: String
            if request.hasPrefix("GET /metrics") {
                reply = http(snapshot.prometheus(), type: "text/plain; version=0.0.4")
            } else if request.hasPrefix("GET ") {
                reply = http(snapshot.json(), type: "application/json")
            } else {
                reply = snapshot.json()
            }
            var tv = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(conn.raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = try? conn.write(reply)
        }
    }

    private func http(_ body: String, type: String) -> String {
        "HTTP/1.0 200 OK\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    }
}
