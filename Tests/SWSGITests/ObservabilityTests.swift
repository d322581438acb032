import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct Config {
        @Test func iniUnknownKeyNamesFileAndLine() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let ini = dir.file("app.ini")
            try dir.write("app.ini", "; comment\n[swsgi]\nprocesses = 1\nbogus-key = 3\n")
            let (status, output) = try runToExit(["--ini", ini], socket: "s", in: dir)
            #expect(status != 0)
            #expect(output.contains("\(ini):4"), "stderr: \(output)")
            #expect(output.contains("bogus-key"))
            #expect(!fileExists(dir.file("s")))
        }

        @Test func iniFileIsRead() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            try dir.write("app.ini", "[swsgi]\nprocesses = 3\napp = echo\n")
            let s = try Server(["--ini", dir.file("app.ini")], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(3).count == 3)
            #expect(try s.get("/ini").text == "GET /ini\n")
        }

        @Test(arguments: [2, 3])
        func environmentProcessesIsHonoured(_ n: Int) throws {
            try withServer([], environment: ["SWSGI_PROCESSES": "\(n)"]) { s throws in
                #expect(s.waitWorkers(n).count == n, "children: \(s.workers)")
                #expect(s.log.contains("\(n) workers accepting"))
            }
        }

        @Test func commandLineBeatsEnvironment() throws {
            try withServer(["--processes", "1"], environment: ["SWSGI_PROCESSES": "3"]) { s throws in
                #expect(s.waitWorkers(1).count == 1)
                #expect(s.log.contains("1 workers accepting"))
            }
        }

        @Test(arguments: [["--bogus-flag"], ["--processes", "0"], ["stray"]])
        func badCommandLineExitsNonZero(_ args: [String]) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let (status, output) = try runToExit(args, socket: "s", in: dir)
            #expect(status != 0)
            #expect(output.hasPrefix("swsgi: "), "stderr: \(output)")
            #expect(!fileExists(dir.file("s")))
        }
    }

    @Suite struct Stats {
        @Test func rawJSONOnConnect() throws {
            try withServer(["--processes", "2", "--stats", "{dir}/stats", "--listen", "64"]) { s throws in
                let workers = s.waitWorkers(2)
                for _ in 0..<5 { #expect(try s.get("/").status == 200) }
                let path = s.dir.file("stats")
                var stats: [String: Any] = [:]
                // A worker counts a request just after writing its response.
                let counted = waitUntil(3) {
                    stats = (try? readStats(path)) ?? [:]
                    return statsWorkers(stats).compactMap { $0["requests"] as? Int }.reduce(0, +) == 5
                }
                #expect(counted, "\(stats)")
                #expect(stats["pid"] as? Int == Int(s.pid))
                #expect(stats["listen_queue"] as? Int == 0)
                #expect(stats["listen_queue_max"] as? Int == 64)
                let ws = statsWorkers(stats)
                #expect(ws.count == 2)
                #expect(Set(ws.compactMap { ($0["pid"] as? Int).map(Int32.init) }) == Set(workers))
                #expect(Set(ws.compactMap { $0["id"] as? Int }) == [1, 2])
                for w in ws {
                    #expect(w["status"] as? String == "idle")
                    #expect((w["rss"] as? Int ?? 0) > 0)
                    #expect(w["request"] is NSNull)
                }
            }
        }

        @Test func httpAndPrometheusOnTheStatsSocket() throws {
            try withServer(["--processes", "2", "--stats", "{dir}/stats"]) { s throws in
                _ = s.waitWorkers(2)
                for _ in 0..<3 { _ = try s.get("/") }
                let path = s.dir.file("stats")
                var text = ""
                let ok = waitUntil(3) {
                    guard let c = try? Client(path: path) else { return false }
                    try? c.send("GET /metrics HTTP/1.1\r\nHost: stats\r\n\r\n")
                    guard let r = try? c.readResponse(timeout: 3), r.status == 200 else { return false }
                    text = r.text
                    let counts = text.split(separator: "\n").filter { $0.hasPrefix("swsgi_worker_requests_total{") }
                        .compactMap { Int($0.split(separator: " ").last!) }
                    return counts.count == 2 && counts.reduce(0, +) == 3
                }
                #expect(ok, "metrics:\n\(text)")
                #expect(text.contains("# TYPE swsgi_worker_requests_total counter"))
                #expect(text.contains("swsgi_workers 2"))
                #expect(text.contains("swsgi_listen_queue 0"))

                let c = try Client(path: path)
                try c.send("GET / HTTP/1.1\r\nHost: stats\r\n\r\n")
                let json = try c.readResponse(timeout: 3)
                #expect(json.status == 200 && json.header("Content-Type") == "application/json")
                let obj = try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any]
                #expect(obj?["pid"] as? Int == Int(s.pid))
            }
        }
    }

    @Suite struct AccessLog {
        /// Lines for requests (worker lines), after the master has exited so every write is done.
        static func requestLines(_ s: Server) -> [String] {
            #expect(s.stop() == 0)
            return s.logLines.filter { $0.contains(" swsgi worker ") }
        }

        @Test func oneLinePerRequest() throws {
            try withServer(["--processes", "2"]) { s throws in
                let workers = s.waitWorkers(2)
                let ids = Dictionary(uniqueKeysWithValues: workers.map { ($0, workerID($0)) })
                _ = try s.get("/logged?x=1")
                let line = try #require(Self.requestLines(s).first { $0.contains("/logged") })
                let m = try #require(line.wholeMatch(of: #/\S+ swsgi worker ([12]) \[pid (\d+)\]: GET /logged\?x=1 200 14B (\d+\.\d{3})ms/#),
                                     "line: \(line)")
                #expect(ids[Int32(m.2)!] == Int(m.1), "worker id and pid match a live worker: \(ids)")
            }
        }

        @Test func disableLoggingSilencesRequests() throws {
            try withServer(["--processes", "1", "--disable-logging", "--app", "static:{dir}"]) { s throws in
                #expect(try s.get("/").status == 404)
                #expect(try s.get("/swsgi.log").status == 200)
                #expect(Self.requestLines(s) == [])
            }
        }

        @Test func log4xxBringsBack4xxOnly() throws {
            try withServer(["--processes", "1", "--disable-logging", "--log-4xx", "--app", "static:{dir}"]) { s throws in
                #expect(try s.get("/missing").status == 404)
                #expect(try s.get("/swsgi.log").status == 200)
                let lines = Self.requestLines(s)
                #expect(lines.count == 1 && lines.first?.contains("GET /missing 404") == true, "\(lines)")
            }
        }

        @Test func log5xxBringsBack5xxOnly() throws {
            try withServer(["--processes", "1", "--disable-logging", "--log-5xx", "--app", "static:{dir}"]) { s throws in
                #expect(try s.get("/missing").status == 404)
                #expect(try s.get("/swsgi.log").status == 200)
                let c = try s.connect()
                try c.send("GET / HTTP/2.0\r\nHost: t\r\n\r\n")
                #expect(try c.readResponse().status == 505)
                let lines = Self.requestLines(s)
                #expect(lines.count == 1 && lines.first?.contains(" 505 ") == true, "\(lines)")
            }
        }
    }
}
