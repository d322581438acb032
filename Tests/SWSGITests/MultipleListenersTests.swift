import Foundation
import Glibc
import Testing

func uwsgiGet(_ path: String) -> [UInt8] {
    uwsgiPacket([("REQUEST_METHOD", "GET"), ("PATH_INFO", path), ("REQUEST_URI", path), ("SERVER_PROTOCOL", "HTTP/1.1"),
                 ("SERVER_NAME", "t"), ("SERVER_PORT", "80")])
}

extension SWSGIIntegration {
    /// uWSGI configs pair listeners (`http = :8000` beside `socket = app.sock`, repeated `socket =` lines):
    /// every worker accepts on all of them, each listener speaking its own protocol.
    @Suite struct MultipleListeners {
        @Test func everyListenerAnswersInItsOwnProtocol() throws {
            let port = try freeLocalPort()
            try withServer(["--processes", "2", "--app", "echo", "--http-socket", "127.0.0.1:\(port)",
                            "--uwsgi-socket", "{dir}/u.sock", "--socket", "{dir}/h2.sock"]) { s throws in
                #expect(s.log.contains("listening on http:\(s.dir.file("h2.sock")), http:\(s.socket!), http:127.0.0.1:\(port), uwsgi:\(s.dir.file("u.sock"))"), "\(s.log)")
                for endpoint in [Endpoint.unix(s.socket!), .unix(s.dir.file("h2.sock")), .tcp(port: port)] {
                    let c = try Client(endpoint)
                    try c.send(httpGet("/over-http"))
                    let r = try c.readResponse(timeout: 5)
                    #expect(r.status == 200 && r.text.contains("/over-http"), "\(endpoint): \(r.status) \(r.text)")
                }
                // The uwsgi listener reads uwsgi packets, and an HTTP request there is not one.
                let u = try Client(.unix(s.dir.file("u.sock")))
                try u.send(uwsgiGet("/over-uwsgi"))
                let r = try u.readResponse(timeout: 5)
                #expect(r.status == 200 && r.text.contains("/over-uwsgi"), "\(r.status) \(r.text)")
                // An HTTP request on the uwsgi listener is not a uwsgi packet: refused, never served as HTTP.
                let wrong = try Client(.unix(s.dir.file("u.sock")))
                try wrong.send(httpGet("/x"))
                let refused = (try? wrong.readResponse(timeout: 5)).map { $0.status != 200 } ?? true
                #expect(refused)
            }
        }

        /// One socket file named through two folders (a symlinked folder, a relative and an absolute path) is
        /// one listener given twice: refused with both names, before anything is bound or left behind.
        @Test func oneFileThroughTwoFoldersIsRefused() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            #expect(symlink(dir.path, dir.file("link")) == 0)
            let s = try Server(["--app", "echo", "--socket", dir.file("link/a.sock")], dir: dir, socket: "a.sock", ready: false)
            defer { s.stop() }
            #expect(s.waitExit(timeout: 10) == 1, "\(s.log)")
            #expect(s.log.contains("the same socket file as --socket") && s.log.contains(dir.file("a.sock"))
                    && s.log.contains(dir.file("link/a.sock")), "\(s.log)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("a.sock")), "nothing left at the path")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".s") }.isEmpty, "no temporary name left")
        }

        /// Every listener given is accepted on, however many: a listener bound and published but never
        /// watched would queue its connections forever (the workers watched the first 64 only).
        @Test func seventyListenersAllAnswer() throws {
            let paths = (1...70).map { "{dir}/l\($0).sock" }
            try withServer(["--processes", "1", "--app", "echo"] + paths.flatMap { ["--socket", $0] }) { s throws in
                for i in [1, 64, 65, 70] {
                    let r = unixGet(s.dir.file("l\(i).sock"), timeoutSeconds: 5)
                    guard case .success(let reply) = r else { Issue.record("l\(i).sock: \(r)"); continue }
                    #expect(reply.status == 200, "l\(i).sock")
                }
            }
        }

        /// SIGTERM: each listener's path is removed at once, and what is in flight or queued on either
        /// listener is answered before the master exits 0.
        @Test func sigtermDrainsEveryListener() throws {
            let port = try freeLocalPort()
            try withServer(["--processes", "2", "--app", "sleep", "--stats", "{dir}/stats", "--http-socket", "127.0.0.1:\(port)",
                            "--uwsgi-socket", "{dir}/u.sock"]) { s throws in
                let stats = s.dir.file("stats")
                _ = s.waitWorkers(2)
                var clients: [(String, Client)] = []
                // Both workers busy: one request on the HTTP path, one on TCP.
                for endpoint in [Endpoint.unix(s.socket!), .tcp(port: port)] {
                    let c = try Client(endpoint)
                    try c.send(httpGet("/sleep/1"))
                    clients.append(("busy \(endpoint)", c))
                }
                _ = try waitBusy(s, stats: stats, count: 2)
                // These wait in three listen queues.
                for i in 0..<2 {
                    for endpoint in [Endpoint.unix(s.socket!), .tcp(port: port)] {
                        let c = try Client(endpoint)
                        try c.send(httpGet("/sleep/0.0\(i)"))
                        clients.append(("queued \(endpoint)", c))
                    }
                    let u = try Client(.unix(s.dir.file("u.sock")))
                    try u.send(uwsgiGet("/sleep/0.0\(i)"))
                    clients.append(("queued uwsgi", u))
                }
                let queued = waitUntil(3) { ((try? readStats(stats))?["listen_queue"] as? Int ?? 0) >= 6 }
                #expect(queued, "6 connections queued over the three listeners: \((try? readStats(stats)) ?? [:])")
                s.signal(SIGTERM)
                for (what, c) in clients {
                    let r = try c.readResponse(timeout: 10)
                    #expect(r.status == 200, "\(what)")
                }
                #expect(s.waitExit(timeout: 10) == 0, "log:\n\(s.log)")
                #expect(!fileExists(s.socket!) && !fileExists(s.dir.file("u.sock")), "both socket paths are removed")
            }
        }

        /// hupwatch owns the TCP port (`--listen`: a new generation could not bind it while the old one holds
        /// it); swsgi keeps its Unix path itself (each generation renames its socket over the last one's).
        /// Three reloads under load on both listeners: nothing fails on either.
        @Test func hupwatchReloadsLoseNothingOnEitherListener() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let port = try freeLocalPort()
            let swsgi = try swsgiBinary()
            let hupwatch = try binary("hupwatch")
            let sock = dir.file("app.sock"), status = dir.file("status.json")
            let pid = try spawnProcess(hupwatch, ["--status-file", status, "--listen", "127.0.0.1:\(port)", "--",
                                                  swsgi, "--http-socket", "127.0.0.1:\(port)", "--socket", sock,
                                                  "--processes", "2", "--disable-logging"],
                                       environment: cleanEnvironment(), outputPath: dir.file("hupwatch.log"))
            var reaped = false
            defer {
                if !reaped {
                    kill(pid, SIGTERM)
                    var st: Int32 = 0
                    if !waitUntil(15, { waitpid(pid, &st, WNOHANG) == pid }) { kill(pid, SIGKILL); waitpid(pid, &st, 0) }
                }
            }
            let log = { (try? String(contentsOfFile: dir.file("hupwatch.log"), encoding: .utf8)) ?? "" }
            func settled(_ n: Int) -> Bool {
                guard let data = FileManager.default.contents(atPath: status),
                      let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let gens = doc["generations"] as? [[String: Any]], gens.count == 1,
                      gens[0]["state"] as? String == "ready" else { return false }
                return doc["current_generation"] as? Int == n
            }
            try #require(waitUntil(20) { settled(1) && fileExists(sock) }, "generation 1 ready: \(log())")
            #expect(log().contains("listening on fd 3 from LISTEN_FDS") || log().contains("http:127.0.0.1:\(port) (fd 3 from LISTEN_FDS"), "\(log())")
            let overUnix = LoadClient(path: sock, concurrency: 2)
            let overTCP = LoadClient(endpoint: .tcp(port: port), concurrency: 2)
            try overUnix.waitForMoreBlocking(30)
            try overTCP.waitForMoreBlocking(30)
            for n in 2...4 {
                overUnix.startingReload(n - 1)
                overTCP.startingReload(n - 1)
                kill(pid, SIGHUP)
                #expect(waitUntil(20) { settled(n) }, "generation \(n) serving alone: \(log())")
                try overUnix.waitForMoreBlocking(30)
                try overTCP.waitForMoreBlocking(30)
            }
            try overUnix.stop()
            try overTCP.stop()
            #expect(overUnix.failedCount == 0, "Unix path: \(overUnix.failedCount) of \(overUnix.completed) failed: \(overUnix.failureSamples)")
            #expect(overTCP.failedCount == 0, "TCP: \(overTCP.failedCount) of \(overTCP.completed) failed: \(overTCP.failureSamples)")
            #expect(overUnix.succeeded > 100 && overTCP.succeeded > 100)
            kill(pid, SIGTERM)
            var st: Int32 = 0
            #expect(waitUntil(20) { waitpid(pid, &st, WNOHANG) == pid })
            reaped = true
            #expect(st == 0, "hupwatch exit status \(st): \(log())")
            #expect(!fileExists(sock), "the last generation removed its path")
        }
    }
}
