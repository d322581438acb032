import Foundation
import Glibc
import Posix
import Testing

/// One GET over TCP to nginx (HTTP/1.0: nginx closes after the answer); the status code, or why not.
func tcpGet(port: UInt16, path: String = "/", timeoutSeconds: Int = 10) -> Result<Int, ClientError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(ClientError(stage: "socket", errno: errno)) }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let c = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard c == 0 else { return .failure(ClientError(stage: "connect", errno: errno)) }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: test\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        return .failure(ClientError(stage: "send", errno: errno))
    }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n == 0 { break }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(ClientError(stage: "read", errno: errno))
        }
        response += buf[..<n]
    }
    let text = String(decoding: response.prefix(12), as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), let code = Int(text.dropFirst(9).prefix(3)) else {
        return .failure(ClientError(stage: "response \(text.debugDescription)", errno: 0))
    }
    return .success(code)
}

/// A TCP port nobody listens on right now (bound once to port 0, then released).
func freeLocalPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    defer { close(fd) }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sin) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TestFailure("bind(127.0.0.1:0): \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: sin.sin_port)
}

/// What the client threads of the nginx test count, behind one lock.
final class NginxTally: @unchecked Sendable {
    private let lock = NSLock()
    private var ok = 0, failures: [String] = [], stopRequested = false, running = 0

    func record(_ r: Result<Int, ClientError>) {
        lock.withLock {
            switch r {
            case .success(200): ok += 1
            case .success(let code): failures.append("status \(code)")
            case .failure(let e): failures.append(e.description)
            }
        }
    }
    var answered: Int { lock.withLock { ok } }
    var failed: [String] { lock.withLock { failures } }
    var stopping: Bool { lock.withLock { stopRequested } }
    var clientsRunning: Int { lock.withLock { running } }
    func stop() { lock.withLock { stopRequested = true } }
    func started() { lock.withLock { running += 1 } }
    func finished() { lock.withLock { running -= 1 } }
}

extension HupwatchIntegration {
    /// The set-up users run: nginx with an upstream keep-alive pool -> Unix socket -> hupwatch -> swsgi.
    @Suite(.serialized) struct BehindNginx {
        static let nginxPaths = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]

        @Test func reloadsThroughNginxWithAKeepAlivePoolLoseNothing() throws {
            guard let nginx = Self.nginxPaths.first(where: { access($0, X_OK) == 0 }) else {
                Issue.record("nginx is not installed: apt-get install nginx-light (.ci/run installs it)")
                return
            }
            let dir = try TempDir()
            defer { dir.remove() }
            let sock = dir.file("app.sock")
            let port = try freeLocalPort()
            try FileManager.default.createDirectory(atPath: dir.file("tmp"), withIntermediateDirectories: true)
            try dir.write("nginx.conf", """
                daemon off;
                user root;
                worker_processes 1;
                pid \(dir.file("nginx.pid"));
                error_log \(dir.file("nginx.err")) warn;
                events { worker_connections 256; }
                http {
                    access_log off;
                    client_body_temp_path \(dir.file("tmp")); proxy_temp_path \(dir.file("tmp"));
                    fastcgi_temp_path \(dir.file("tmp")); uwsgi_temp_path \(dir.file("tmp")); scgi_temp_path \(dir.file("tmp"));
                    upstream app { server unix:\(sock); keepalive 8; }
                    server {
                        listen 127.0.0.1:\(port);
                        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
                    }
                }
                """)
            let hw = try Hupwatch(["--", try binary("swsgi"), "--socket", sock, "--processes", "2", "--disable-logging"], dir: dir)
            defer { hw.kill() }
            let nginxPID = try launch([nginx, "-p", dir.path, "-e", dir.file("nginx.err"), "-c", dir.file("nginx.conf")],
                                      stdout: dir.file("nginx.out"), stderr: dir.file("nginx.err"))
            defer {
                kill(nginxPID, SIGTERM)
                reapIfOurs(nginxPID)
            }
            _ = try hw.waitServing(1)
            try waitUntil(10, "nginx to answer 200 on port \(port): \(dir.read("nginx.err") ?? "")") {
                (try? tcpGet(port: port).get()) == 200
            }

            // Two clients without pause, through nginx, while 5 reloads happen one after another.
            let tally = NginxTally()
            for _ in 0..<2 {
                tally.started()
                Thread {
                    while !tally.stopping { tally.record(tcpGet(port: port)) }
                    tally.finished()
                }.start()
            }
            defer {
                tally.stop()
                try? waitUntil(15, "the clients to finish") { tally.clientsRunning == 0 }
            }
            try waitUntil(10, "the first answers") { tally.answered >= 50 }
            for n in 2...6 {
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n)
                let mark = tally.answered
                try waitUntil(10, "answers after reload \(n - 1)") { tally.answered >= mark + 50 }
            }
            tally.stop()
            try waitUntil(15, "the clients to finish") { tally.clientsRunning == 0 }
            let (answered, failed) = (tally.answered, tally.failed)
            print("behind nginx: \(answered) requests across 5 reloads, \(failed.count) failed")
            #expect(failed.isEmpty, "\(failed.count) failed: \(Dictionary(grouping: failed, by: { $0 }).mapValues(\.count))")
            #expect(answered > 250)
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            #expect(!dir.exists("app.sock"), "swsgi removes its own socket path at exit")
        }
    }
}
