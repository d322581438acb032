import Foundation
import Glibc
import Testing

extension HupwatchIntegration {
    /// swsgi's `--vacuum false` (uWSGI's `vacuum = false`) under hupwatch: rewrite mode and the guard stay
    /// correct. Reloads under load lose nothing, every reaped generation's private path goes, and at exit
    /// only what vacuum = false asks to keep stays.
    @Suite(.serialized) struct VacuumUnderHupwatch {
        /// Rewrite mode (hupwatch sees `--socket`): the generations' private paths are hupwatch's to
        /// remove, the public path hupwatch's own; swsgi keeping its socket file changes neither.
        /// Guard mode (the path in an ini file hupwatch cannot see, named with `--socket`): each new
        /// generation takes the path over; with vacuum = false the last one's socket stays at exit.
        @Test(arguments: ["rewrite", "guard"])
        func reloadsLoseNothingAndOnlyWhatVacuumFalseKeepsStays(_ mode: String) throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let sock = dir.file("app.sock")
            let command: [String]
            if mode == "rewrite" {
                command = ["--", try binary("swsgi"), "--socket", sock, "--processes", "1", "--disable-logging", "--vacuum=false"]
            } else {
                try dir.write("app.ini", "[uwsgi]\nhttp-socket = \(sock)\nprocesses = 1\ndisable-logging = true\nvacuum = false\n")
                command = ["--socket", sock, "--", try binary("swsgi"), "--ini", dir.file("app.ini")]
            }
            let hw = try Hupwatch(command, dir: dir)
            defer { hw.kill() }
            _ = try hw.waitServing(1)
            #expect(hw.lines(containing: "protection: \(mode == "rewrite" ? "rewrite mode" : "guard") on \(sock)").count == 1, "\(hw.stderr)")
            let load = LoadClient(endpoint: .unix(sock), concurrency: 2, timeoutSeconds: 10, pauseMicroseconds: 0)
            defer { try? load.stop() }
            try waitUntil(10, "the first answers") { load.succeeded >= 20 }
            for n in 2...4 {
                hw.signal(SIGHUP)
                _ = try hw.waitServing(n)
                let mark = load.succeeded
                try waitUntil(10, "answers after reload \(n - 1)") { load.succeeded >= mark + 20 }
                if mode == "rewrite" {
                    try waitUntil(10, "generation \(n - 1)'s private path removed: \(entries(dir.path))") { !fileExists(dir.file(".app.sock.g\(n - 1)")) }
                }
            }
            try load.stop()
            let failed = load.failures.map(\.error)
            #expect(failed.isEmpty, "\(failed.count) of \(load.succeeded + failed.count) failed: \(Set(failed))")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
            let left = entries(dir.path).filter { $0.contains("sock") }
            // Rewrite: hupwatch removes the public path it pointed and every private one. Guard: the path is
            // the last generation's own socket, which vacuum = false leaves (stale: the next start replaces it).
            #expect(left == (mode == "rewrite" ? [] : ["app.sock"]), "\(left)")
        }
    }
}
