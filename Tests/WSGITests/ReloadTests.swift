import Foundation
import Glibc
import Testing

/// Requests sent without pause from several threads until stopped; answers and failures counted.
final class LoadRun: @unchecked Sendable {
    private let lock = NSLock()
    private var answered = 0
    private var failures: [String] = []
    private var stopping = false
    private var running = 0

    func start(socket: String, path: String, clients: Int) {
        for _ in 0..<clients {
            lock.lock(); running += 1; lock.unlock()
            Thread { [self] in
                while !isStopping {
                    do {
                        let c = try Client(.unix(socket))
                        try c.send(httpGet(path))
                        let r = try c.readResponse(timeout: 20)
                        record(r.status == 200 ? nil : "status \(r.status)")
                    } catch {
                        record("\(error)")
                    }
                }
                lock.lock(); running -= 1; lock.unlock()
            }.start()
        }
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    private func record(_ failure: String?) {
        lock.lock(); defer { lock.unlock() }
        if let failure { failures.append(failure) } else { answered += 1 }
    }

    var snapshot: (answered: Int, failures: [String], running: Int) {
        lock.lock(); defer { lock.unlock() }
        return (answered, failures, running)
    }

    func stop() {
        lock.lock(); stopping = true; lock.unlock()
        _ = waitUntil(30) { snapshot.running == 0 }
    }
}

extension WSGIIntegration {
    @Suite struct Reload {
        /// hupwatch's status file: the generation serving alone, once settled.
        static func settledGeneration(_ path: String) -> Int? {
            guard let data = FileManager.default.contents(atPath: path),
                  let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let gens = doc["generations"] as? [[String: Any]], gens.count == 1,
                  gens[0]["serving"] as? Bool == true, gens[0]["state"] as? String == "ready" else { return nil }
            return doc["current_generation"] as? Int
        }

        @Test func reloadsUnderHupwatchLoseNoRequest() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            var env = cleanEnvironment(try writeProbe(dir))
            env["PATH"] = "/usr/bin:/bin"
            let swsgi = try swsgiBinary()
            let hupwatch = URL(fileURLWithPath: swsgi).deletingLastPathComponent().appendingPathComponent("hupwatch").path
            let sock = dir.file("app.sock"), status = dir.file("status.json")
            let pid = try spawnProcess(hupwatch, ["--status-file", status, "--", swsgi, "--socket", sock, "--processes", "2",
                                                  "--wsgi-file", dir.file("probe.py"), "--disable-logging"],
                                       environment: env, outputPath: dir.file("hupwatch.log"))
            var reaped = false
            defer {
                if !reaped {
                    kill(pid, SIGTERM)
                    var st: Int32 = 0
                    if !waitUntil(15, { waitpid(pid, &st, WNOHANG) == pid }) { kill(pid, SIGKILL); waitpid(pid, &st, 0) }
                }
            }
            let log = { (try? String(contentsOfFile: dir.file("hupwatch.log"), encoding: .utf8)) ?? "" }
            try #require(waitUntil(20) { Self.settledGeneration(status) == 1 }, "generation 1 ready: \(log())")
            let load = LoadRun()
            load.start(socket: sock, path: "/environ", clients: 3)
            defer { load.stop() }
            #expect(waitUntil(10) { load.snapshot.answered >= 50 })
            for n in 2...4 {
                kill(pid, SIGHUP)
                #expect(waitUntil(20) { Self.settledGeneration(status) == n }, "generation \(n) serving alone: \(log())")
                let mark = load.snapshot.answered
                #expect(waitUntil(10) { load.snapshot.answered >= mark + 50 }, "answers after reload \(n - 1)")
            }
            load.stop()
            let (answered, failures, _) = load.snapshot
            #expect(failures.isEmpty, "\(failures.count) of \(answered + failures.count) failed: \(failures.prefix(3))")
            #expect(answered > 200)
            kill(pid, SIGTERM)
            var st: Int32 = 0
            #expect(waitUntil(20) { waitpid(pid, &st, WNOHANG) == pid })
            reaped = true
            #expect(st == 0, "hupwatch exit status \(st): \(log())")
        }
    }
}
