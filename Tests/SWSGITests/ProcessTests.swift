import Foundation
import Glibc
import Testing

/// Every test that starts real swsgi processes lives under this one serialized suite: they share
/// two cores with other work, and their timing assertions must not compete with each other.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct SWSGIIntegration {}

/// Starts swsgi in a fresh temp dir (after `setup` prepared it), runs `body`, then stops and reaps
/// the server and removes the dir, whatever happened.
func withServer<T>(_ arguments: [String], environment: [String: String] = [:], setup: (TempDir) throws -> Void = { _ in },
                   _ body: (Server) throws -> T) throws -> T {
    let dir = try TempDir()
    defer { dir.remove() }
    try setup(dir)
    let server = try Server(arguments, dir: dir, environment: environment)
    defer { server.stop() }
    return try body(server)
}

/// The worker id in a `swsgi worker N` title.
func workerID(_ pid: Int32) -> Int? {
    processTitle(pid).flatMap { $0.hasPrefix("swsgi worker ") ? Int($0.dropFirst("swsgi worker ".count)) : nil }
}

extension SWSGIIntegration {
    @Suite struct Processes {
        @Test func masterForksTitledWorkers() throws {
            try withServer(["--processes", "3"]) { s throws in
                let workers = s.waitWorkers(3)
                #expect(workers.count == 3, "children: \(s.workers)")
                #expect(Set(workers.compactMap(workerID)) == [1, 2, 3], "titles: \(workers.map { processTitle($0) ?? "?" })")
                #expect(processTitle(s.pid) == "swsgi master")
                #expect(s.log.contains("3 workers accepting"))
                #expect(try s.get("/").status == 200)
            }
        }

        @Test func killedWorkerIsRespawnedAndLogged() throws {
            try withServer(["--processes", "2"]) { s throws in
                let before = s.waitWorkers(2)
                try #require(before.count == 2)
                let victim = before[0]
                let victimID = try #require(workerID(victim))
                kill(victim, SIGKILL)
                #expect(s.waitForLog("worker \(victimID) (pid \(victim)) died (killed by SIGKILL); respawning"), "log:\n\(s.log)")
                let after = s.waitWorkers(2) { !$0.contains(victim) }
                #expect(after.count == 2 && !after.contains(victim), "children: \(after)")
                #expect(Set(after.compactMap(workerID)) == [1, 2])
                #expect(after.contains(before[1]), "the other worker must be left alone")
                for _ in 0..<4 { #expect(try s.get("/").status == 200) }
            }
        }

        @Test func listenBacklogAndSocketMode() throws {
            try withServer(["--processes", "1", "--listen", "7", "--chmod-socket", "600", "--stats", "{dir}/stats"]) { s throws in
                var st = stat()
                #expect(lstat(s.socket!, &st) == 0)
                #expect(st.st_mode & 0o777 == 0o600, "mode \(String(st.st_mode & 0o777, radix: 8))")
                #expect((st.st_mode & S_IFMT) == S_IFSOCK)
                let stats = try readStats(s.dir.file("stats"))
                #expect(stats["listen_queue_max"] as? Int == 7, "\(stats)")
                #expect(try s.get("/").status == 200)
            }
        }
    }
}
