import Foundation
import Glibc

// A real nginx in front of the server under test, as users run it: its own config, pid, logs and temp
// folders in the test's folder, on a free loopback port, in the foreground, stopped by its pid.

public enum Nginx {
    /// nginx's path; fails naming the install command when it is missing.
    public static func binary() throws -> String {
        let known: [String] = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]
        if let p = known.first(where: { access($0, X_OK) == 0 }) { return p }
        return try requireTool("nginx")
    }

    /// A whole nginx.conf: one worker, `listen 127.0.0.1:port`, an upstream `app` of `upstream` (for instance
    /// `unix:/tmp/x/app.sock`) with a keep-alive pool of `keepalive` connections (nil: none), and `location`
    /// as the server's routing (default: proxy_pass to the upstream over HTTP/1.1). Runs as root so a
    /// socket in the test's folder is reachable.
    public static func config(dir: TempDir, port: UInt16, upstream: String, keepalive: Int? = 8,
                              location: String? = nil) -> String {
        let tmp = dir.file("nginx-tmp")
        let pool = keepalive.map { " keepalive \($0);" } ?? ""
        let route = location ?? """
            location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
            """
        return """
            daemon off;
            user root;
            worker_processes 1;
            pid \(dir.file("nginx.pid"));
            error_log \(dir.file("nginx.err")) warn;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(tmp); proxy_temp_path \(tmp);
                fastcgi_temp_path \(tmp); uwsgi_temp_path \(tmp); scgi_temp_path \(tmp);
                upstream app { server \(upstream);\(pool) }
                server {
                    listen 127.0.0.1:\(port);
                    \(route)
                }
            }
            """
    }

    /// Writes `config` to DIR/nginx.conf and starts nginx in the foreground; stop it with `stop()`.
    public static func start(dir: TempDir, config: String) throws -> Child {
        let nginx = try binary()
        try dir.mkdir("nginx-tmp")
        try dir.write("nginx.conf", config)
        return try Child([nginx, "-p", dir.path, "-e", dir.file("nginx.err"), "-c", dir.file("nginx.conf")],
                         output: dir.file("nginx.out"), environment: testEnvironment(), newProcessGroup: false)
    }

    /// Waits until nginx answers 200 on `port` (the upstream is up too); the failure quotes nginx's error log.
    public static func waitAnswering(port: UInt16, dir: TempDir, path: String = "/", timeout: Double = 10) throws {
        try waitUntil(timeout, "nginx to answer 200 on port \(port): \(dir.read("nginx.err"))") {
            (try? tcpGet(port: port, path: path).get()) == 200
        }
    }
}
