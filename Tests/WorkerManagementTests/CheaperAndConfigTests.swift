import Foundation
import Glibc
import Testing

extension WorkerManagementIntegration {
    @Suite struct Cheaper {
        /// Starts at --cheaper 1, scales up to --processes under load, back down to 1 when idle.
        @Test func scalesUpUnderLoadAndBackDown() async throws {
            let s = try await Swsgi.start(["--app", "sleep", "--processes", "4", "--cheaper", "1", "--cheaper-overload", "0.2",
                                           "--cheaper-busyness-multiplier", "2", "--disable-logging"])
            defer { s.stop() }
            #expect(try s.stats().active.count == 1)
            #expect(s.lines(containing: "1 workers accepting").count == 1)

            let load = LoadGenerator(socket: s.socket, path: "/sleep/0.2", clients: 4)
            var most = 1
            do {
                try await waitFor(8, "4 workers under load") {
                    let n = try s.stats().active.count
                    most = max(most, n)
                    #expect(n <= 4)
                    return n == 4
                }
            } catch {
                _ = try? await load.stop()
                throw error
            }
            let tally = try await load.stop()
            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(5))")
            let up = s.lines(containing: "cheaper: 1 -> 2 workers (busyness ")
            #expect(up.count == 1)
            #expect(up.first?.contains("> --cheaper-busyness-max 50%") == true)
            #expect(s.lines(containing: "cheaper: 3 -> 4 workers").count == 1)

            try await waitFor(8, "back to 1 worker") { try s.stats().workers.count == 1 }
            let down = s.lines(containing: "cheaper: 2 -> 1 workers (busyness ")
            #expect(down.count == 1)
            #expect(down.first?.contains("for 2 cycles") == true)
            #expect(s.lines(containing: "retiring worker").allSatisfy { $0.hasSuffix(": cheaper") })
            // And the last worker still serves.
            let r = try await onThread { [socket = s.socket] in try request(socket, "/sleep/0", timeout: 5) }
            #expect(r.status == 200)
            #expect(try s.stats().active.count == 1)
            s.stop()
            #expect(s.survivors().isEmpty)
        }
    }

    /// Bad values: non-zero exit before anything is bound, with a message naming the flag.
    @Suite struct BadValues {
        struct Case: Sendable, CustomTestStringConvertible {
            let args: [String]
            let flag: String
            var testDescription: String { args.joined(separator: " ") }
        }

        static let cases: [Case] = [
            Case(args: ["--harakiri", "-1"], flag: "--harakiri"),
            Case(args: ["--harakiri", "1", "--harakiri-graceful-timeout", "-0.5"], flag: "--harakiri-graceful-timeout"),
            Case(args: ["--cheaper", "4", "--processes", "4"], flag: "--cheaper"),
            Case(args: ["--cheaper", "5", "--processes", "4"], flag: "--cheaper"),
            Case(args: ["--cheaper-busyness-min", "60", "--cheaper-busyness-max", "50"], flag: "--cheaper-busyness-min"),
            Case(args: ["--harakiri-graceful-timeout", "1"], flag: "--harakiri-graceful-timeout"),
            Case(args: ["--max-requests-delta", "10", "--max-requests", "5"], flag: "--max-requests-delta"),
            // The master<->worker protocol's signals: HUP = retire, USR1 = drain, INT = exit now (immediate
            // shutdown). As the graceful signal, INT gets the app's handler installed and unblocked in each
            // worker, so the master's INT no longer stops workers.
            Case(args: ["--harakiri", "1", "--harakiri-graceful-signal", "HUP"], flag: "--harakiri-graceful-signal"),
            Case(args: ["--harakiri", "1", "--harakiri-graceful-signal", "USR1"], flag: "--harakiri-graceful-signal"),
            Case(args: ["--harakiri", "1", "--harakiri-graceful-signal", "INT"], flag: "--harakiri-graceful-signal"),
        ]

        @Test(arguments: cases) func refused(_ c: Case) async throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let logPath = dir + "/log"
            let p = try Child([try swsgiBinary(), "--socket", dir + "/s", "--app", "sleep", "--processes", "2"] + c.args,
                              output: logPath, environment: cleanEnvironment(), newProcessGroup: false)
            func text() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            // It must exit by itself; if it starts serving instead, stop it.
            try await waitFor(10, "swsgi \(c.args) to exit or start") { !p.running || text().contains("listening on") }
            if p.running {
                p.stop(SIGINT, timeout: 5)
                Issue.record("swsgi \(c.args.joined(separator: " ")) was accepted and started serving")
                return
            }
            let out = text()
            #expect(p.exitCode != 0)
            #expect(out.contains(c.flag), "message does not name \(c.flag): \(out)")
            #expect(!out.contains("listening on"), "started before refusing: \(out)")
            #expect(access(dir + "/s", F_OK) != 0, "the socket was bound")
        }

        /// `--help` lists the alias, and describes the threshold the way it works: harakiri fires only
        /// once the listen queue holds MORE than N (at exactly N it is held; see queueThresholdHoldsThenFires).
        @Test func helpDescribesTheQueueThreshold() async throws {
            let r = try await run([try swsgiBinary(), "--help"], timeout: 10)
            let help = r.output
            #expect(r.status == 0)
            let a = try #require(help.range(of: "--harakiri-graceful-queue-threshold N"))
            let entry = String(help[a.lowerBound...].prefix(300).split(separator: "--max-requests").first ?? "")
            let flat = entry.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
            #expect(flat.contains("(also --harakiri-queue-threshold)"))
            #expect(!flat.contains("at least N"), "help says 'at least N' but harakiri fires only above N: \(flat)")
        }
    }
}
