import Foundation
import Glibc
import Testing

/// The uwsgi app, its mule loop and the markers folder the Python code writes to.
func writeUwsgiApp(_ dir: TempDir) throws -> [String: String] {
    try dir.write("services_app.py", UwsgiFixtures.app)
    try dir.write("mule_loop.py", UwsgiFixtures.muleLoop)
    try dir.write("lazy_app.py", UwsgiFixtures.lazyApp)
    try FileManager.default.createDirectory(atPath: dir.file("markers"), withIntermediateDirectories: true)
    return ["PROBE_MARKERS": dir.file("markers")]
}

/// Sends the request now; the reply is read later (the worker may be busy meanwhile).
func startRequest(_ s: Server, _ target: String) throws -> Client {
    let c = try s.connect()
    try c.send(httpGet(target))
    return c
}

extension Server {
    /// The master's children titled `prefix...` (workers, mules, or a title the app set).
    func children(titled prefix: String) -> [Int32] { workers.filter { processTitle($0)?.hasPrefix(prefix) == true } }
}

func markerLines(_ dir: TempDir, _ name: String) -> [String] {
    ((try? String(contentsOfFile: dir.file("markers/\(name)"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

extension WSGIIntegration {
    /// The `uwsgi` module and `uwsgidecorators` (issue 13) in a Python app under swsgi.
    @Suite struct UwsgiModule {
        static let args = ["--processes", "2", "--wsgi-file", "{dir}/services_app.py", "--cache2", "name=default,items=32,blocksize=65536", "--locks", "1",
                           "--mule={dir}/mule_loop.py", "--mule"]

        /// With Debian's libpython3.11 and, when it is another one, the python3 on PATH.
        @Test(arguments: PythonUnderTest.all)
        func theArticleSnippetsRunAsWritten(_ python: PythonUnderTest) throws {
            try withPython(Self.args, python: python, setUp: writeUwsgiApp) { s, dir throws in
                // @postfork ran in both workers and both mules, after their fork.
                #expect(waitUntil(10) { markerLines(dir, "postfork").count >= 4 }, "log:\n\(s.log)")
                let forks = markerLines(dir, "postfork").map { $0.split(separator: " ").map(String.init) }
                #expect(Set(forks.filter { $0[1] != "0" }.map { $0[1] }) == ["1", "2"], "\(forks)")
                #expect(Set(forks.filter { $0[2] != "0" }.map { $0[2] }) == ["1", "2"], "\(forks)")
                #expect(!forks.contains { $0[0] == "\(s.pid)" }, "not in the master")

                // A value set in one worker is read in another.
                let busy = try startRequest(s, "/sleep?s=1")
                usleep(100_000)
                let set = try s.get("/cache/set?k=greeting&v=from-python")
                #expect(set.status == 200)
                let writer = try #require(set.header("X-Worker"))
                #expect(try busy.readResponse().status == 200)
                var readers: Set<String> = []
                #expect(waitUntil(10) {
                    guard let r = try? s.get("/cache/get?k=greeting"), r.text == "from-python", let w = r.header("X-Worker") else { return false }
                    readers.insert(w)
                    return w != writer
                }, "read back from the other worker (read by \(readers), written by \(writer))")
                #expect(try s.get("/cache/ops").text
                        == "[True, None, b'1', True, b'3', True, 5, 4, 4, [b'a', b'greeting', b'n'], True, None, None, True, []]")

                // @timer(1) fires in a worker; @mstimer(100, target='mule1') in mule 1, inside its mule_get_msg loop.
                #expect(waitUntil(5) { markerLines(dir, "timer").count >= 2 }, "log:\n\(s.log)")
                let timerPIDs = Set(markerLines(dir, "timer").compactMap { $0.split(separator: " ").last.flatMap { Int32($0) } })
                #expect(timerPIDs.isSubset(of: Set(s.children(titled: "swsgi worker"))), "\(timerPIDs)")
                #expect(waitUntil(5) { markerLines(dir, "mule_timer").count >= 5 }, "log:\n\(s.log)")
                #expect(Set(markerLines(dir, "mule_timer").map { $0.split(separator: " ")[1] }) == ["1"])
                #expect(markerLines(dir, "cron").isEmpty, "the 03:00 cron job does not fire now")

                // `with uwsgi.lock_ctx(0):` and @lock: two workers at once, a racy read-modify-write each, no update lost.
                for how in ["ctx", "decorator"] {
                    let clients = try (0..<2).map { _ in try startRequest(s, "/count?how=\(how)&n=150") }
                    let replies = try clients.map { try $0.readResponse(timeout: 30) }
                    #expect(replies.allSatisfy { $0.status == 200 })
                    let total = (try? String(contentsOfFile: dir.file("markers/counter-\(how)"), encoding: .utf8)) ?? ""
                    #expect(total == "300", "\(how): \(total)")
                }

                // The mule loop gets the messages in the order sent.
                #expect(try s.get("/mule?n=200").status == 200)
                #expect(waitUntil(10) { markerLines(dir, "mule").count >= 200 })
                #expect(markerLines(dir, "mule") == (0..<200).map { "message \($0)" })

                // @mulefunc(2) runs in mule 2 (the default --mule) with its arguments.
                #expect(try s.get("/mulefunc?p=/img/1.png").status == 200)
                #expect(waitUntil(5) { markerLines(dir, "mulefunc") == ["/img/1.png 10 2"] }, "\(markerLines(dir, "mulefunc")); log:\n\(s.log)")

                // worker_id, numproc (an int, callable too), masterpid, opt.
                let info = try #require(try JSONSerialization.jsonObject(with: Data(s.get("/info").text.utf8)) as? [String: Any])
                #expect([1, 2].contains(info["worker_id"] as? Int ?? 0))
                #expect(info["mule_id"] as? Int == 0)
                #expect(info["numproc"] as? Int == 2)
                #expect(info["numproc_called"] as? Int == 2)
                #expect(info["masterpid"] as? Int == Int(s.pid))
                #expect(info["masterpid_at_import"] as? Int == Int(s.pid))
                let opt = info["opt"] as? [String: Any]
                #expect(opt?["processes"] as? String == "2")
                #expect(opt?["cache2"] as? String == "name=default,items=32,blocksize=65536")
                #expect(info["mules"] as? [String] == [dir.file("mule_loop.py"), "<flag>"], "--mule=FILE, then --mule alone (True)")

                // setprocname: what ps shows for this worker.
                let titled = try s.get("/procname?t=python-busy")
                let wid = try #require(titled.header("X-Worker"))
                #expect(waitUntil(5) { s.children(titled: "python-busy").count == 1 }, "worker \(wid)")
                #expect(s.log.contains("Traceback") == false, "log:\n\(s.log)")
            }
        }

        @Test func misuseRaisesAPythonExceptionNeverFailsSilently() throws {
            try withPython(Self.args, setUp: writeUwsgiApp) { s, dir throws in
                let lines = try s.get("/errors").text.split(separator: "\n").map(String.init)
                func line(_ what: String) -> String { lines.first { $0.hasPrefix(what + ":") } ?? "\(what): missing in \(lines)" }
                #expect(line("key") == "key: CacheError ValueError Exception: cache 'default': key of 3000 bytes refused (keysize is 2048)")
                #expect(line("value") == "value: CacheError ValueError Exception: cache 'default': value of 70000 bytes refused (blocksize is 65536)")
                #expect(line("nocache").contains("CacheError") && line("nocache").contains("no cache named 'nosuch'"), "\(line("nocache"))")
                #expect(line("lock").hasPrefix("lock: ServicesError RuntimeError") && line("lock").contains("lock 7 does not exist"), "\(line("lock"))")
                #expect(line("unlock").contains("does not hold lock 0"), "\(line("unlock"))")
                #expect(line("signal").contains("ServicesError") && line("signal").contains("signal 300"), "\(line("signal"))")
                #expect(line("unregistered").contains("signal 200 has no handler"), "\(line("unregistered"))")
                #expect(line("interval").contains("not a positive interval"), "\(line("interval"))")
                #expect(line("cronfield").contains("ServicesError") && line("cronfield").contains("cron"), "\(line("cronfield"))")
                #expect(line("target").contains("unknown signal target 'nobody'"), "\(line("target"))")
                #expect(line("mule").contains("mule 9 does not exist"), "\(line("mule"))")
                #expect(line("getmsg").contains("not a mule"), "\(line("getmsg"))")
                #expect(line("type").hasPrefix("type: TypeError"), "\(line("type"))")
                #expect(!lines.contains { $0.contains("no exception") }, "\(lines)")
                // Refusals are counted and logged, and the worker serves on.
                #expect(s.log.contains("key of 3000 bytes refused"))
                #expect(try s.get("/cache/get?k=k").text == "None")

                // A handler that raises: its traceback is logged at each run, and the workers serve on.
                #expect(try s.get("/raising-signal").status == 200)
                #expect(waitUntil(5) { markerLines(dir, "broken").count >= 3 && s.log.components(separatedBy: "KeyError: 'from a signal handler'").count > 3 },
                        "log:\n\(s.log)")
                #expect(try s.get("/cache/get?k=k").status == 200)

                // A worker killed while it holds uwsgi.lock(1) does not leave it held.
                let holder = try startRequest(s, "/hold-lock")
                #expect(waitUntil(5) { markerLines(dir, "holder").count == 1 })
                let holderPID = try #require(markerLines(dir, "holder").first.flatMap { Int32($0) })
                let taker = try startRequest(s, "/take-lock")
                #expect(!taker.fill(until: monotonicSeconds() + 0.3), "the other worker waits for the lock")
                #expect(kill(holderPID, SIGKILL) == 0)
                #expect(try taker.readResponse(timeout: 5).text == "taken")
                #expect(throws: (any Error).self) { _ = try holder.readResponse(timeout: 2) }
                #expect(waitUntil(10) { let w = s.children(titled: "swsgi worker"); return w.count == 2 && !w.contains(holderPID) })

                // uwsgi.reload(): the master replaces every worker, gracefully.
                let before = Set(s.children(titled: "swsgi worker"))
                #expect(before.count == 2)
                #expect(try s.get("/reload").text == "True")
                #expect(waitUntil(10) { let now = Set(s.children(titled: "swsgi worker")); return now.count == 2 && now.isDisjoint(with: before) },
                        "log:\n\(s.log)")
                #expect(try s.get("/cache/get?k=k").status == 200)
            }
        }

        @Test func lazyAppsRunPostforkAndAddTheirTimerOnce() throws {
            let args = ["--processes", "2", "--lazy-apps", "--wsgi-file", "{dir}/lazy_app.py"]
            try withPython(args, setUp: writeUwsgiApp) { s, dir throws in
                #expect(waitUntil(10) { markerLines(dir, "postfork").count == 2 }, "log:\n\(s.log)")
                #expect(Set(markerLines(dir, "postfork").map { $0.split(separator: " ")[1] }) == ["1", "2"])
                // The timer every worker added after its fork runs once a second, not once per worker.
                #expect(waitUntil(6) { markerLines(dir, "timer").count >= 1 })
                let start = markerLines(dir, "timer").count
                usleep(2_100_000)
                let fired = markerLines(dir, "timer").count - start
                #expect((1...3).contains(fired), "\(fired) runs in 2.1 s")
            }
        }

        @Test func uwsgiCannotBeImportedOutsideSwsgi() throws {
            for module in ["uwsgi", "uwsgidecorators"] {
                let r = try runCommand("/usr/bin/python3", ["-c", "import \(module)"])
                #expect(r.status == 1)
                #expect(r.output.contains("ModuleNotFoundError: No module named '\(module)'"), "\(r.output)")
            }
        }

        @Test func aMuleFileThatIsMissingStopsStartUp() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            _ = try writeUwsgiApp(dir)
            let r = try runToExit(["--wsgi-file", dir.file("services_app.py"), "--mule=\(dir.file("nope.py"))"], socket: "s", in: dir)
            #expect(r.status == 1)
            #expect(r.output.contains("--mule=\(dir.file("nope.py")): No such file or directory"), "\(r.output)")
            #expect(!fileExists(dir.file("s")), "refused before anything is bound")
        }
    }
}
