import Foundation
import Glibc
import Testing
import TestSupport

/// nginx in front of swsgi, reaching it with `uwsgi_pass` and Debian's /etc/nginx/uwsgi_params.
final class UwsgiNginx: @unchecked Sendable {
    let pid: pid_t
    let port: UInt16
    let dir: TempDir

    init(dir: TempDir, upstream: String) throws {
        guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: { (p: String) in access(p, X_OK) == 0 }) else {
            throw TestFailure("nginx is missing: apt-get install nginx-light (Tests/run does)")
        }
        guard access("/etc/nginx/uwsgi_params", R_OK) == 0 else { throw TestFailure("/etc/nginx/uwsgi_params is missing: apt-get install nginx-light") }
        self.dir = dir
        port = try freeLocalPort()
        try FileManager.default.createDirectory(atPath: dir.file("tmp"), withIntermediateDirectories: true)
        // nginx's workers run as www-data unless told otherwise: the test's 0700 folder is root's.
        try dir.write("nginx.conf", """
            user root;
            daemon off;
            master_process on;
            worker_processes 1;
            pid \(dir.file("nginx.pid"));
            error_log \(dir.file("nginx.err"));
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(dir.file("tmp")); proxy_temp_path \(dir.file("tmp"));
                fastcgi_temp_path \(dir.file("tmp")); uwsgi_temp_path \(dir.file("tmp")); scgi_temp_path \(dir.file("tmp"));
                client_max_body_size 64m;
                server {
                    listen 127.0.0.1:\(port);
                    location / { include /etc/nginx/uwsgi_params; uwsgi_pass \(upstream); }
                }
            }
            """)
        pid = try spawnProcess(nginx, ["-p", dir.path, "-e", dir.file("nginx.err"), "-c", dir.file("nginx.conf")],
                               environment: cleanEnvironment(), outputPath: dir.file("nginx.out"))
        let up = waitUntil(10) { (try? Client(.tcp(port: self.port))) != nil }
        if !up { stop() }
        guard up else { throw TestFailure("nginx did not listen on \(port): \((try? String(contentsOfFile: dir.file("nginx.err"), encoding: .utf8)) ?? "")") }
    }

    func get(_ target: String, method: String = "GET", body: [UInt8] = [], headers: [String] = []) throws -> HTTPReply {
        let c = try Client(.tcp(port: port))
        var head = "\(method) \(target) HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined()
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        try c.send(head + "\r\n")
        if !body.isEmpty { try c.send(body) }
        return try c.readResponse(timeout: 20, headRequest: method == "HEAD")
    }

    func stop() {
        kill(pid, SIGTERM)
        var st: Int32 = 0
        if !waitUntil(10, { waitpid(pid, &st, WNOHANG) == pid }) {
            kill(pid, SIGKILL)
            waitpid(pid, &st, 0)
        }
    }
}

extension WSGIIntegration {
    @Suite struct UwsgiProtocol {
        @Test func nginxUwsgiPassReachesThePythonApp() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            var env = try writeProbe(dir)
            env["PATH"] = "/usr/bin:/bin"
            let sock = dir.file("app.sock")
            // A 3 MiB upload below: over the 1 MiB --limit-post default.
            let s = try Server(["--processes", "2", "--wsgi-file", dir.file("probe.py"), "--uwsgi-socket", sock, "--limit-post", "8m"], dir: dir,
                               socket: nil, environment: env, ready: false)
            defer { s.stop() }
            #expect(waitUntil(15) { s.log.contains("workers accepting") && fileExists(sock) }, "\(s.log)")
            #expect(s.log.contains("uwsgi:\(sock)"))
            let nginx = try UwsgiNginx(dir: dir, upstream: "unix:\(sock)")
            defer { nginx.stop() }

            let r = try nginx.get("/environ/caf%C3%A9?q=1")
            #expect(r.status == 200, "\(r.status) \(r.text)")
            let env2 = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
            #expect(env2["REMOTE_ADDR"] as? String == "127.0.0.1", "nginx's client address, not the Unix socket's")
            #expect(env2["SERVER_PORT"] as? String == String(nginx.port))
            #expect(env2["PATH_INFO"] as? String == "/environ/caf\u{C3}\u{A9}")
            #expect(env2["QUERY_STRING"] as? String == "q=1")
            #expect(env2["REQUEST_URI"] as? String == "/environ/caf%C3%A9?q=1")
            #expect(env2["HTTP_HOST"] as? String == "front.example")
            #expect(env2["REQUEST_SCHEME"] as? String == "http" && env2["wsgi.url_scheme"] as? String == "http")

            let form = try nginx.get("/upload", method: "POST", body: [UInt8](repeating: 65, count: 3 << 20))
            #expect(form.text == String(3 << 20))
            let stream = try nginx.get("/stream")
            #expect(stream.text == (0..<5).map { "chunk\($0)\n" }.joined())
            let file = try nginx.get("/file")
            let data = try probeData(dir)
            #expect(file.body == data)
            let head = try nginx.get("/head", method: "HEAD")
            #expect(head.status == 200 && head.header("Content-Length") == "5")
            #expect(try nginx.get("/raise").status == 500)
            #expect(try nginx.get("/").text == "hello /\n")
            let failures = FailureLog()
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                for _ in 0..<50 {
                    do { if try nginx.get("/pid").status != 200 { failures.add("status") } } catch { failures.add("\(error)") }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
            #expect(s.log.contains("POST /upload 200"))
        }

        @Test func aMalformedUwsgiPacketIsRefusedAndTheWorkerGoesOn() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--uwsgi-socket", "{dir}/u.sock"], socket: nil) { _, dir throws in
                let c = try Client(.unix(dir.file("u.sock")))
                // modifier1 5 (not WSGI), then a variable block whose lengths overrun it.
                try c.send([5, 4, 0, 0, 9, 0, 65, 66])
                #expect(c.closesWithoutData(timeout: 5) || (try? c.readResponse(timeout: 5))?.status == 400)
                let bad = try Client(.unix(dir.file("u.sock")))
                try bad.send([0, 6, 0, 0, 200, 0, 65, 66, 67, 68])
                #expect((try? bad.readResponse(timeout: 5))?.status == 400)
                // A well-formed one still works.
                func pair(_ k: String, _ v: String) -> [UInt8] {
                    let kb = Array(k.utf8), vb = Array(v.utf8)
                    return [UInt8(kb.count & 0xff), UInt8(kb.count >> 8)] + kb + [UInt8(vb.count & 0xff), UInt8(vb.count >> 8)] + vb
                }
                let vars = pair("REQUEST_METHOD", "GET") + pair("PATH_INFO", "/pid") + pair("REQUEST_URI", "/pid")
                let ok = try Client(.unix(dir.file("u.sock")))
                try ok.send([0, UInt8(vars.count & 0xff), UInt8(vars.count >> 8), 0] + vars)
                let r = try ok.readResponse(timeout: 5)
                #expect(r.status == 200 && Int(r.text) != nil)
                #expect(ok.closesWithoutData(timeout: 5), "one request per uwsgi connection")
            }
        }

        /// A refused uwsgi packet is logged with the method and target it carries and what was wrong in it (found by
        /// an attack: every refusal read `- - 400 (the request line is not METHOD TARGET VERSION)`).
        @Test func uwsgiRefusalsNameTheRequestAndTheFault() throws {
            try withPython(["--processes", "1", "--wsgi-file", "{dir}/probe.py", "--uwsgi-socket", "{dir}/u.sock"], socket: nil) { s, dir throws in
                let badLength = try Client(.unix(dir.file("u.sock")))
                try badLength.send(uwsgiPacket([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/upload?x=1"), ("PATH_INFO", "/upload"),
                                                ("CONTENT_LENGTH", "12abc")]))
                #expect((try? badLength.readResponse(timeout: 5))?.status == 400)
                #expect(s.waitForLog("POST /upload?x=1 400"), "\(s.log)")
                #expect(s.waitForLog("Content-Length is not a non-negative decimal number"), "\(s.log)")
                let modifier = try Client(.unix(dir.file("u.sock")))
                var packet = uwsgiPacket([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")])
                packet[0] = 30
                try modifier.send(packet)
                #expect(modifier.closesWithoutData(timeout: 5) || (try? modifier.readResponse(timeout: 5))?.status == 400)
                #expect(s.waitForLog("a uwsgi packet with modifier1 30"), "\(s.log)")
                #expect(!s.log.contains("the request line is not METHOD TARGET VERSION"), "\(s.log)")
            }
        }

        /// A uWSGI production config, unchanged but for paths: `socket =` serves nginx's uwsgi_pass.
        @Test func aUwsgiIniRunsUnchangedBehindNginx() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            var env = try writeProbe(dir)
            env["PATH"] = "/usr/bin:/bin"
            let sock = dir.file("app.sock")
            try dir.write("uwsgi.ini", """
                [uwsgi]
                strict = true
                master = true
                enable-threads = true
                vacuum = true                        ; Delete sockets during shutdown
                single-interpreter = true
                die-on-term = true                   ; Shutdown when receiving SIGTERM (default is respawn)
                need-app = true
                disable-logging = true               ; Disable built-in logging
                log-4xx = true                       ; but log 4xx's anyway
                log-5xx = true                       ; and 5xx's
                harakiri = 60                        ; forcefully kill workers after 60 seconds
                py-call-osafterfork = true           ; allow workers to trap signals
                max-requests = 1000                  ; Restart workers after this many requests
                max-worker-lifetime = 3600           ; Restart workers after this many seconds
                reload-on-rss = 2048                 ; Restart workers after this much resident memory
                worker-reload-mercy = 60             ; How long to wait before forcefully killing workers
                cheaper-algo = busyness
                processes = 4                        ; Maximum number of workers allowed
                cheaper = 1                          ; Minimum number of workers allowed
                cheaper-initial = 2                  ; Workers created at startup
                cheaper-overload = 1                 ; Length of a cycle in seconds
                cheaper-step = 1                     ; How many workers to spawn at a time
                cheaper-busyness-multiplier = 30     ; How many cycles to wait before killing workers
                cheaper-busyness-min = 20            ; Below this threshold, kill workers
                cheaper-busyness-max = 70            ; Above this threshold, spawn new workers
                cheaper-busyness-backlog-alert = 16  ; Spawn emergency workers if more than this many requests wait
                cheaper-busyness-backlog-step = 2    ; How many emergency workers to create
                auto-procname = true
                procname-prefix = "mysvc "
                chdir = \(dir.path)
                module = probe:application
                socket = \(sock)
                """)
            let s = try Server(["--ini", dir.file("uwsgi.ini")], dir: dir, socket: nil, environment: env, ready: false)
            defer { s.stop() }
            #expect(waitUntil(15) { s.log.contains("workers accepting") && fileExists(sock) }, "\(s.log)")
            #expect(waitUntil(10) { s.workers.count == 2 && s.workers.allSatisfy { processTitle($0)?.hasPrefix("mysvc swsgi worker") == true } },
                    "procname-prefix with its quotes: \(s.workers.map { processTitle($0) ?? "?" })")
            let nginx = try UwsgiNginx(dir: dir, upstream: "unix:\(sock)")
            defer { nginx.stop() }
            #expect(try nginx.get("/").text == "hello /\n")
            #expect(try nginx.get("/raise").status == 500)
            #expect(s.waitForLog("GET /raise 500"), "log-5xx under disable-logging")
            #expect(!s.log.contains("GET / 200"))
            #expect(s.stop() == 0)
            #expect(!fileExists(sock), "vacuum: the socket path is gone")
        }
    }
}
