// uWSGI's logging options on a running swsgi (issue 20): each test starts the server with the option
// and reads what it wrote.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct Logging {
        /// Lines of `text` that are request lines of the default form.
        static func requestLines(_ text: String) -> [String] {
            text.split(separator: "\n").map(String.init).filter { $0.contains(" swsgi worker ") && $0.contains(" HTTP") == false && $0.contains("B ") }
        }

        /// req-logger = file:PATH gets the request lines, in --log-format's form with uWSGI's variables;
        /// the server's own lines stay on stderr.
        @Test func reqLoggerWritesLogFormatLinesToItsOwnFile() throws {
            let format = #"%(addr) %(user) "%(method) %(uri) %(proto)" %(status) %(rsize) %(size) %(hsize) %(headers) %(cl) "%(uagent)" "%(referer)" %(var.HTTP_X_REQUEST_ID) {"u":"%(json_uri)"} %(wid) %(pid) %(msecs) %(secs) %(ltime) %(nonsense"#
            try withServer(["--processes", "1", "--app", "echo", "--req-logger", "file:{dir}/req.log", "--log-format", format]) { s throws in
                #expect(try s.get("/a\"b?x=1", headers: ["X-Request-Id: r-42", "User-Agent: t/1", "Referer: http://r/"]).status == 200)
                let req = s.dir.file("req.log")
                try waitUntil(5, "req.log has a line") { ((try? String(contentsOfFile: req, encoding: .utf8)) ?? "").contains("\n") }
                let line = try String(contentsOfFile: req, encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
                let pid = try #require(s.workers.first)
                let m = try #require(line.wholeMatch(of: #/- - "GET /a"b\?x=1 HTTP/1.1" 200 (\d+) (\d+) (\d+) (\d+) 0 "t/1" "http://r/" r-42 \{"u":"/a\\"b\?x=1"\} 1 (\d+) (\d+) (\d+\.\d{6}) (\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}) %\(nonsense/#), "line: \(line)")
                let (body, size, hsize, headers) = (Int(m.1)!, Int(m.2)!, Int(m.3)!, Int(m.4)!)
                #expect(body > 0 && hsize > 0 && size == body + hsize && headers >= 1)
                #expect(Int32(m.5) == pid)
                #expect(!s.log.contains("GET /a"), "request lines left stderr: \(s.log)")
                #expect(s.log.contains("workers accepting"))
            }
        }

        /// route = REGEX donotlog: drops the request line of matching paths (PATH_INFO, decoded); a
        /// `continue:` rule before it ends the table, so its paths are logged.
        @Test func routeDonotlogDropsMatchingRequests() throws {
            try withServer(["--processes", "1", "--route", "^/health/keep continue:", "--route", "^/health donotlog:",
                            "--route", "^/static/.*\\.css$ donotlog:"]) { s throws in
                for path in ["/health/live", "/he%61lth", "/health/keep", "/static/a.css", "/static/a.js", "/other"] {
                    #expect(try s.get(path).status == 200)
                }
                _ = s.stop()
                let logged = Set(s.logLines.compactMap { line -> String? in
                    guard let r = line.range(of: ": GET ") else { return nil }
                    return String(line[r.upperBound...].split(separator: " ").first ?? "")
                })
                #expect(logged == ["/health/keep", "/static/a.js", "/other"], "\(s.log)")
            }
        }

        /// log-maxsize + log-backupname: the logto file is renamed once it passes the size and a new one
        /// started; lines from both workers stay whole and none is lost.
        @Test func logMaxsizeRotatesTheLogtoFile() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--logto", "{dir}/app.log", "--log-maxsize", "3000",
                                "--log-backupname", "{dir}/app.log.old"], dir: dir, ready: false)
            defer { s.stop() }
            try waitUntil(10, "workers accepting in app.log") { dir.read("app.log").contains("workers accepting") }
            let count = 80
            for i in 0..<count { #expect(try s.get("/r\(i)").status == 200) }
            #expect(s.stop() == 0)
            let old = dir.read("app.log.old"), new = dir.read("app.log")
            #expect(old.contains("triggering rotation to \(dir.file("app.log.old"))"), "backup: \(old.suffix(300))")
            #expect(new.utf8.count < 3000 + 200, "the new file is short: \(new.utf8.count) bytes")
            // Rotated more than once (3000 bytes is ~40 lines): the backup holds the last full file only,
            // so count the lines still present and check each is whole.
            let lines = (old + new).split(separator: "\n")
            for line in lines where line.contains(" swsgi ") {
                #expect(line.wholeMatch(of: #/\S+ swsgi (master|worker [12]) \[pid \d+\]: .*/#) != nil, "torn line: \(line)")
            }
            // The master follows the rotations: its exit line is in the current file, or in the backup when that
            // very line crossed the size (a file rotates after the write that crosses it: app.log is then empty).
            #expect(new.contains("exiting with status 0") || (new.isEmpty && old.contains("exiting with status 0")),
                    "the master writes to the new file: \(new)")
        }

        /// log-maxsize = 1 without log-backupname: every line rotates, many within one second. uWSGI's
        /// backup name (PATH.SECONDS) would be reused and each rename would replace the previous backup;
        /// no request line may be lost that way: each is in exactly one file of the folder.
        @Test func logMaxsizeOneLosesNoLineToSameSecondBackups() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "2", "--logto", "{dir}/app.log", "--log-maxsize", "1"], dir: dir, ready: false)
            defer { s.stop() }
            try waitUntil(10, "workers accepting in the log") {
                ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).contains { dir.read($0).contains("workers accepting") }
            }
            let count = 40
            for i in 0..<count { #expect(try s.get("/r\(i)").status == 200) }
            #expect(s.stop() == 0)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("app.log") }
            let all = files.map { dir.read($0) }.joined(separator: "\n")
            for i in 0..<count {
                let n = all.components(separatedBy: "GET /r\(i) ").count - 1
                #expect(n == 1, "/r\(i) logged \(n) times in \(files.count) files")
            }
        }

        /// Named loggers, log-route and an encoder for one logger: a line matching the route goes only
        /// to its logger, JSON-encoded; the rest go to the unnamed logger, as they are.
        @Test func logRouteSendsMatchingLinesToTheNamedLogger() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            // The readiness line is the one routed away from stderr: wait for it in the named logger's file.
            let s = try Server(["--processes", "1", "--logger", "acc file:{dir}/accepting.log", "--logger", "stdio",
                                "--log-route", "acc workers? accepting", "--log-encoder", #"json:acc {"m":"${msg}","t":${unix}}"#,
                                "--log-encoder", "nl"], dir: dir, ready: false)
            defer { s.stop() }
            try waitUntil(10, "accepting.log") { dir.read("accepting.log").contains("accepting") && fileExists(dir.file("s")) }
            #expect(try s.get("/x").status == 200)
            let text = dir.read("accepting.log")
            let line = try #require(text.split(separator: "\n").first.map(String.init))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect((object["m"] as? String)?.hasSuffix("1 workers accepting") == true, "\(object)")
            #expect(object["t"] is Int)
            #expect(s.stop() == 0)
            #expect(!s.log.contains("workers accepting"), "routed lines are only in their logger")
            #expect(s.log.contains("GET /x 200"))
            // `nl` ends each line with the newline swsgi's one-write(2) lines always carry: no blank lines.
            #expect(!s.log.contains("\n\n"))
        }

        /// Label Studio's config (corpus 109): lines that are JSON already pass as they are; every other line
        /// is wrapped in a JSON object by the `default` logger's encoder (a PCRE negative lookahead route).
        @Test func jsonWrappingRoutesOfARealConfig() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.ini", #"""
                [uwsgi]
                processes = 1
                app = echo
                logger = applogger stdio
                log-route = applogger {
                log-encoder = format:applogger ${msg}
                logger = default stdio
                log-route = default ^((?!\{).)*$
                log-encoder = json:default {"timestamp": "${strftime:%%d/%%b/%%Y:%%H:%%M:%%S %%z}", "source": "uwsgi", "levelname": "INFO", "message": "${msg}"}
                log-encoder = nl
                log-format = {"method": "%(method)", "uri": "%(uri)", "status": %(status)}
                """#)
            let s = try Server(["--ini", dir.file("app.ini")], dir: dir, ready: false)
            defer { s.stop() }
            try waitUntil(10, "accepting") { s.log.contains("workers accepting") && fileExists(dir.file("s")) }
            #expect(try s.get("/q\"x").status == 200)
            #expect(s.stop() == 0)
            var wrapped = 0, requests = 0
            for line in s.logLines {
                let object = try #require(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                if let m = object["message"] as? String {
                    wrapped += 1
                    #expect(m.hasPrefix("swsgi "), "uWSGI's messages carry no date of their own: \(m)")
                    #expect((object["timestamp"] as? String)?.wholeMatch(of: #/\d\d/[A-Z][a-z]{2}/\d{4}:[\d:]{8} [+-]\d{4}/#) != nil)
                }
                if object["uri"] as? String == "/q\"x" { requests += 1; #expect(object["status"] as? Int == 200) }
            }
            #expect(wrapped >= 3 && requests == 1, "\(s.log)")
        }

        /// log-date with a strftime format prefixes the server's lines (uWSGI's `FORMAT - ` form);
        /// log-micros gives the default request line's duration in microseconds.
        @Test func logDateAndLogMicros() throws {
            try withServer(["--processes", "1", "--log-date", "%Y~%m", "--log-micros"]) { s throws in
                #expect(try s.get("/m").status == 200)
                _ = s.stop()
                var t = time(nil)
                var tmv = tm()
                localtime_r(&t, &tmv)
                let prefix = String(format: "%04d~%02d - swsgi ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1)
                #expect(s.logLines.contains { $0.hasPrefix(prefix) && $0.contains("workers accepting") }, "\(s.log)")
                #expect(s.logLines.contains { $0.hasPrefix(prefix) && $0.wholeMatch(of: #/.*: GET /m 200 14B \d+us/#) != nil }, "\(s.log)")
            }
        }

        /// With --disable-logging, log-big / log-zero / log-slow bring back the requests they name
        /// (uWSGI's log_request conditions); log-x-forwarded-for puts the header's address in the line.
        @Test func conditionsAndXForwardedFor() throws {
            try withServer(["--processes", "1", "--app", "echo", "--disable-logging", "--log-big", "40",
                            "--log-x-forwarded-for"]) { s throws in
                #expect(try s.get("/short").status == 200)
                #expect(try s.get("/" + String(repeating: "l", count: 50), headers: ["X-Forwarded-For: 203.0.113.7"]).status == 200)
                _ = s.stop()
                let lines = s.logLines.filter { $0.contains(": ") && $0.contains(" GET /") }
                #expect(lines.count == 1 && lines[0].contains(": 203.0.113.7 GET /lll"), "\(lines)")
            }
            try withServer(["--processes", "1", "--app", "sleep", "--disable-logging", "--log-slow", "150"]) { s throws in
                #expect(try s.get("/sleep/0").status == 200)
                #expect(try s.get("/sleep/0.3").status == 200)
                _ = s.stop()
                let lines = s.logLines.filter { $0.contains(" GET /") }
                #expect(lines.count == 1 && lines[0].contains("/sleep/0.3"), "\(lines)")
            }
        }

        /// logger = rsyslog:/path,TAG sends one RFC 3164 datagram per line to a Unix datagram socket.
        @Test func rsyslogLoggerSendsDatagrams() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let path = dir.file("syslog.sock")
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            try #require(rc == 0)
            let s = try Server(["--processes", "1", "--logger", "rsyslog:\(path),myapp,134"], dir: dir, ready: false)
            defer { s.stop() }
            var got: [String] = []
            try waitUntil(10, "an 'accepting' datagram") {
                var buf = [UInt8](repeating: 0, count: 2048)
                let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
                if n > 0 { got.append(String(decoding: buf[0..<n], as: UTF8.self)) }
                return got.contains { $0.contains("workers accepting") }
            }
            let d = try #require(got.first { $0.contains("workers accepting") })
            #expect(d.wholeMatch(of: #/<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d myapp: .*swsgi master \[pid \d+\]: 1 workers? accepting/#) != nil, "\(d)")
        }

        /// A syslog/rsyslog logger whose Unix socket nobody listens on (no syslog daemon in a container):
        /// every line sent there is dropped, so start-up says so once, naming the path; serving goes on,
        /// as under uWSGI.
        @Test func syslogSocketNobodyListensOnIsWarnedAboutOnce() throws {
            try withServer(["--processes", "1", "--logger", "rsyslog:{dir}/none.sock,myapp,134", "--logger", "stdio"]) { s throws in
                #expect(try s.get("/").status == 200)
                let warnings = s.log.split(separator: "\n").filter { $0.contains("none.sock") && $0.contains("warning") }
                #expect(warnings.count == 1, "\(s.log)")
                #expect(warnings.first?.contains("lost") == true, "\(s.log)")
            }
        }

        /// A [uwsgi] file with the logging keys real configs carry runs, and each does its part.
        @Test func uwsgiIniLoggingKeys() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.ini", """
                [uwsgi]
                processes = 1
                http-socket = \(dir.file("s"))
                logger = file:logfile=\(dir.file("main.log")),maxsize=100000
                req-logger = file:\(dir.file("req.log"))
                logformat = [%(ltime)] %(host) %(method) %(uri) %(status) %(msecs) ms %(rssM) MB
                log-req-encoder = format {"source":"uwsgi-req", "line":"${msg}"}
                log-req-encoder = nl
                route = ^/healthz$ donotlog:
                log-master = true
                threaded-logger = true
                memory-report = true
                logdate = true
                """)
            let s = try Server(["--ini", dir.file("app.ini")], dir: dir, socket: nil, ready: false)
            defer { s.stop() }
            try waitUntil(10, "accepting in main.log") { dir.read("main.log").contains("workers accepting") }
            #expect(try request(dir.file("s"), "/healthz").status == 200)
            #expect(try request(dir.file("s"), "/page").status == 200)
            try waitUntil(5, "req.log line") { dir.read("req.log").contains("/page") }
            let req = dir.read("req.log")
            #expect(!req.contains("/healthz"))
            #expect(req.wholeMatch(of: #/\{"source":"uwsgi-req", "line":"\[\d\d/\w{3}/\d{4}:[\d:]+ [+-]\d{4}\] x GET /page 200 \d+ ms \d+ MB"\}\n/#) != nil, "\(req)")
            // logdate = true: uWSGI's ctime date, `Sun Dec  6 23:07:44 2026 - `.
            #expect(dir.read("main.log").split(separator: "\n").contains { $0.wholeMatch(of: #/[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} - swsgi master \[pid \d+\]: .*/#) != nil })
        }

        /// log-drain drops matching lines; log-filter keeps only matching ones (server lines and, without a
        /// req-logger, request lines: uWSGI's log master sees both).
        @Test func logDrainAndLogFilter() throws {
            try withServer(["--processes", "1", "--log-drain", "GET /quiet", "--log-filter", "swsgi (master|worker)"]) { s throws in
                #expect(try s.get("/quiet").status == 200)
                #expect(try s.get("/loud").status == 200)
                _ = s.stop()
                #expect(s.log.contains("GET /loud 200") && !s.log.contains("/quiet"), "\(s.log)")
            }
        }

        /// log-truncate empties the logto file at start-up; logto = HOST:PORT sends each line as a UDP datagram.
        @Test func logTruncateAndUDPLogto() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.log", "line from before\n")
            let s = try Server(["--processes", "1", "--logto", "{dir}/app.log", "--log-truncate"], dir: dir, ready: false)
            try waitUntil(10, "accepting in app.log") { dir.read("app.log").contains("workers accepting") }
            #expect(!dir.read("app.log").contains("line from before"))
            #expect(s.stop() == 0)

            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            try #require(bound)
            let port = Int(UInt16(bigEndian: addr.sin_port))
            let u = try Server(["--processes", "1", "--logto", "127.0.0.1:\(port)"], dir: dir, ready: false)
            defer { u.stop() }
            var got = ""
            try waitUntil(10, "an 'accepting' datagram") {
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
                if n > 0 { got += String(decoding: buf[0..<n], as: UTF8.self) }
                return got.contains("workers accepting")
            }
            #expect(!fileExists(dir.file("127.0.0.1:\(port)")), "no file named after the address")
        }

        /// logfile-chown gives the log file to --uid before the drop, so the service user owns it.
        @Test func logfileChownGivesTheLogToTheServiceUser() throws {
            guard getuid() == 0 else { Issue.record("needs root to test a privilege drop"); return }
            let dir = try TempDir()
            defer { dir.remove() }
            // The unprivileged master renames its socket into place in this folder.
            chmod(dir.path, 0o777)
            let s = try Server(["--processes", "1", "--uid", "nobody", "--gid", "nogroup", "--logto", "{dir}/app.log",
                                "--logfile-chown"], dir: dir, ready: false)
            defer { s.stop() }
            try waitUntil(10, "accepting in app.log") { dir.read("app.log").contains("workers accepting") }
            var st = stat()
            #expect(stat(dir.file("app.log"), &st) == 0 && st.st_uid == 65534, "owner \(st.st_uid)")
        }

        /// A log path that is a FIFO nobody reads: open(O_WRONLY) would block the master before it
        /// says anything (a hang); swsgi refuses it with one line naming the path, at once.
        @Test func logFifoWithoutReaderIsRefusedNotAHang() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            #expect(mkfifo(dir.file("log.fifo"), 0o600) == 0)
            for args in [["--logto", "{dir}/log.fifo"], ["--logger", "x file:{dir}/log.fifo", "--log-route", "x ^a"],
                         ["--req-logger", "file:{dir}/log.fifo"]] {
                let r = try runToExit(args + ["--processes", "1"], socket: "s", in: dir, timeout: 5)
                #expect(r.status != 0, "\(args)")
                #expect(r.output.contains("log.fifo") && r.output.contains("a FIFO with no reader"), "\(args): \(r.output)")
            }
        }

        /// Values that cannot work are refused with the option named, before anything starts.
        @Test func badLoggingValuesAreRefused() throws {
            let cases: [([String], String)] = [
                (["--logger", "python"], "the python logger"),
                (["--logger", "zmq:tcp://x"], "unknown logger 'zmq'"),
                (["--log-route", "nobody ^x"], "no --logger is named 'nobody'"),
                (["--log-route", "x (unclosed"], "not a valid regular expression"),
                (["--route", "^/x rewrite:/y"], "route action 'rewrite' is not supported"),
                (["--log-encoder", "gzip"], "binary lines"),
                (["--logger", "syslog:app,nofacility"], "unknown syslog facility"),
                (["--logger", "x file:/proc/no-such-dir/x.log", "--log-route", "x ^a"], "--logger x file:/proc/no-such-dir/x.log: open(/proc/no-such-dir/x.log): No such file or directory"),
            ]
            for (args, message) in cases {
                let r = try runToExit(args + ["--processes", "1"], socket: "s")
                #expect(r.status != 0, "\(args)")
                #expect(r.output.contains(message), "\(args): \(r.output)")
            }
        }
    }
}
