import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    /// uWSGI's static-file rules on a running swsgi (core/static.c): static-index, static-expires*,
    /// static-gzip*, static-safe and static-skip-ext, read from a [uwsgi] section, in front of an app
    /// (`--app echo` answers what the static map leaves to it with "GET /path").
    @Suite struct StaticRules {
        @Test func indexExpiresGzipSafeAndSkipExtDoWhatUWSGIDoes() throws {
            try withServer(["--processes", "1", "--app", "echo", "--ini", "{dir}/app.ini"], setup: { dir in
                let fm = FileManager.default
                for d in ["www/docs", "www/bare", "www/css", "safe", "private"] { try fm.createDirectory(atPath: dir.file(d), withIntermediateDirectories: true) }
                try dir.write("www/docs/default.htm", "docs index\n")
                try dir.write("www/bare/index.html", "not an index here\n")
                try dir.write("www/css/site.css", "body{}\n")
                try dir.write("www/app.js", "plain js\n")
                try dir.write("www/app.js.gz", bytes: [0x1f, 0x8b, 8, 0, 1, 2, 3, 4])
                try dir.write("www/css/site.css.br", bytes: [0xce, 0xb2, 0xcf, 0x81])
                try dir.write("www/view.py", "print('source')\n")
                try dir.write("safe/shared.txt", "shared\n")
                try dir.write("private/secret.txt", "secret\n")
                try fm.createSymbolicLink(atPath: dir.file("www/shared.txt"), withDestinationPath: dir.file("safe/shared.txt"))
                try fm.createSymbolicLink(atPath: dir.file("www/secret.txt"), withDestinationPath: dir.file("private/secret.txt"))
                try dir.write("app.ini", """
                    [uwsgi]
                    static-map = /s=%dwww
                    static-index = index.htm
                    static-index = default.htm
                    static-expires = /css/.* 3600
                    static-expires-uri = ^/s/app\\.js 60
                    static-gzip-all = true
                    static-safe = %dsafe
                    static-skip-ext = .py
                    """)
            }) { s throws in
                func get(_ path: String, _ headers: [String] = []) throws -> HTTPReply {
                    let c = try s.connect()
                    try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
                    return try c.readResponse(timeout: 5)
                }
                func expiresIn(_ r: HTTPReply) -> Double? {
                    guard let e = r.header("Expires") else { return nil }
                    let f = DateFormatter()
                    f.locale = Locale(identifier: "en_US_POSIX")
                    f.timeZone = TimeZone(identifier: "GMT")
                    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                    return f.date(from: e).map { $0.timeIntervalSinceNow }
                }
                // static-index: the listed files in order; a directory with none of them is the app's.
                #expect(try get("/s/docs/").text == "docs index\n")
                #expect(try get("/s/bare/").text == "GET /s/bare/\n", "index.html is not a listed index file")
                // static-expires matches the file's path; static-expires-uri the request's URI.
                let css = try get("/s/css/site.css")
                #expect(css.text == "body{}\n" && (expiresIn(css).map { abs($0 - 3600) < 30 } ?? false), "\(css.headers)")
                let js = try get("/s/app.js")
                #expect(js.text == "plain js\n" && (expiresIn(js).map { abs($0 - 60) < 30 } ?? false), "\(js.headers)")
                #expect(js.header("Vary") == "Accept-Encoding" && js.header("Content-Encoding") == nil)
                #expect(try get("/s/docs/default.htm").header("Expires") == nil)
                // static-gzip-all: FILE.gz to a client that takes gzip, with the original's type.
                let gz = try get("/s/app.js", ["Accept-Encoding: br, gzip"])
                #expect(gz.body == [0x1f, 0x8b, 8, 0, 1, 2, 3, 4] && gz.header("Content-Encoding") == "gzip", "\(gz.headers)")
                #expect(gz.header("Content-Type")?.hasPrefix("text/javascript") == true)
                let br = try get("/s/css/site.css", ["Accept-Encoding: gzip, br"])
                #expect(br.body == [0xce, 0xb2, 0xcf, 0x81] && br.header("Content-Encoding") == "br", "FILE.br first: \(br.headers)")
                // static-safe: a symlink out of the folder is followed into a safe folder only.
                #expect(try get("/s/shared.txt").text == "shared\n")
                let secret = try get("/s/secret.txt")
                #expect(secret.text == "GET /s/secret.txt\n", "left to the app, never served: \(secret.text)")
                // static-skip-ext: the app's.
                #expect(try get("/s/view.py").text == "GET /s/view.py\n")
            }
        }

        /// `static-safe = /` (uWSGI: every real path starts with it) lets a symlink lead anywhere.
        @Test func staticSafeRootAllowsEveryLink() throws {
            try withServer(["--processes", "1", "--app", "echo", "--static-map", "/s={dir}/www", "--static-safe", "/"], setup: { dir in
                let fm = FileManager.default
                for d in ["www", "elsewhere"] { try fm.createDirectory(atPath: dir.file(d), withIntermediateDirectories: true) }
                try dir.write("elsewhere/shared.txt", "shared\n")
                try fm.createSymbolicLink(atPath: dir.file("www/shared.txt"), withDestinationPath: dir.file("elsewhere/shared.txt"))
            }) { s throws in
                #expect(try s.get("/s/shared.txt").text == "shared\n")
            }
        }

        /// The master checks each map's folder (to log the missing ones) but serves nothing: it keeps no fd of
        /// them open (a leaked fd would also be inherited by every worker).
        @Test func theMasterKeepsNoStaticFolderOpen() throws {
            try withServer(["--processes", "1", "--app", "echo", "--static-map", "/s={dir}/www", "--static-map", "/t={dir}/www"], setup: { dir in
                try FileManager.default.createDirectory(atPath: dir.file("www"), withIntermediateDirectories: true)
            }) { s throws in
                let www = s.dir.file("www")
                let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(s.pid)/fd")
                let open = fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(s.pid)/fd/\($0)")) == www }
                #expect(open.isEmpty, "the master holds \(open.count) fds of \(www)")
            }
        }

        /// A FIFO in a static folder (or reached through a --static-safe link) is not a file: opening it for
        /// reading would block the worker until some writer came, so no request could ever be answered again.
        @Test func aFIFOInTheStaticFolderIsLeftToTheAppWithoutBlockingTheWorker() throws {
            try withServer(["--processes", "1", "--app", "echo", "--static-map", "/s={dir}/www",
                            "--static-safe", "{dir}/safe", "--static-gzip-all"], setup: { dir in
                let fm = FileManager.default
                for d in ["www", "safe"] { try fm.createDirectory(atPath: dir.file(d), withIntermediateDirectories: true) }
                try dir.write("www/a.txt", "plain\n")
                #expect(mkfifo(dir.file("www/pipe.txt"), 0o644) == 0)
                #expect(mkfifo(dir.file("www/a.txt.gz"), 0o644) == 0)
                #expect(mkfifo(dir.file("safe/pipe2.txt"), 0o644) == 0)
                try fm.createSymbolicLink(atPath: dir.file("www/linked.txt"), withDestinationPath: dir.file("safe/pipe2.txt"))
            }) { s throws in
                func get(_ path: String, _ headers: [String] = []) throws -> HTTPReply {
                    let c = try s.connect()
                    try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
                    return try c.readResponse(timeout: 5)
                }
                #expect(try get("/s/pipe.txt").text == "GET /s/pipe.txt\n")
                #expect(try get("/s/linked.txt").text == "GET /s/linked.txt\n")
                let a = try get("/s/a.txt", ["Accept-Encoding: gzip"])
                #expect(a.text == "plain\n" && a.header("Content-Encoding") == nil, "\(a.headers)")
            }
        }
    }
}
