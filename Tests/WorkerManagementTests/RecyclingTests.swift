import Foundation
import Glibc
import Testing

extension WorkerManagementIntegration {
    /// Each recycling trigger under ~3 s of continuous requests from 4 clients (keep-alive and new
    /// connections mixed): no request may fail, and workers must really be replaced.
    @Suite struct Recycling {
        struct Run {
            let tally: LoadGenerator.Tally
            let initialPIDs: Set<Int32>
            let finalPIDs: Set<Int32>
            let log: [String]
        }

        /// `killing`: the trigger SIGKILLs workers (--evil-reload-on-rss, as uWSGI's): requests they hold fail.
        func runLoad(_ args: [String], seconds: Double = 3, path: String = "/", killing: Bool = false) async throws -> Run {
            let s = try await Swsgi.start(["--processes", "2"] + args)
            defer { s.stop() }
            let initial = try s.stats().pids
            let load = LoadGenerator(socket: s.socket, path: path, clients: 4)
            let end = monoNow() + seconds
            // No stats polling meanwhile: each raw stats client stalls the master's loop for 20 ms.
            while monoNow() < end { try await Task.sleep(nanoseconds: 50_000_000) }
            let tally = try await load.stop()
            let final = try s.stats().pids
            let run = Run(tally: tally, initialPIDs: initial, finalPIDs: final, log: s.logLines())
            print("recycling \(args): \(tally.ok) ok, \(tally.failures.count) failed, \(tally.keepAliveReused) on reused keep-alive connections, "
                  + "\(run.log.filter { $0.contains("retiring worker") }.count) recycles")
            if !killing {
                #expect(tally.failures.isEmpty, "\(tally.failures.count) failed requests, first: \(tally.failures.prefix(5))")
            }
            // (A killing limit below a fresh worker's RSS serves only when a replacement happens to accept before the
            // next sample, which a loaded machine may never see: that run asserts the kills and back-offs instead.)
            if !killing { #expect(tally.ok > 50, "only \(tally.ok) requests served") }
            if !killing { #expect(tally.keepAliveReused > 0) }
            #expect(initial.isDisjoint(with: final), "workers not replaced: \(initial) -> \(final)")
            s.stop()
            #expect(s.survivors().isEmpty, "workers left alive: \(s.survivors())")
            return run
        }

        @Test func maxRequestsWithDelta() async throws {
            let run = try await runLoad(["--max-requests", "20", "--max-requests-delta", "5"])
            do {
                let retiring = run.log.filter { $0.contains("retiring worker") }
                #expect(retiring.count >= 4)
                #expect(retiring.allSatisfy { $0.hasSuffix(": max-requests") }, "\(retiring.filter { !$0.hasSuffix(": max-requests") })")
                // Requests per worker pid from the access log: worker N is recycled after 20 + 5 N requests.
                var served: [Int32: Int] = [:]
                for l in run.log where l.contains("swsgi worker ") && l.contains(": GET / 200") {
                    if let p = number(after: "[pid ", in: l) { served[Int32(p), default: 0] += 1 }
                }
                var overshoot: [Int] = []
                for l in retiring {
                    guard let id = number(after: "retiring worker ", in: l), let pid = number(after: "(pid ", in: l).map(Int32.init) else { continue }
                    let limit = 20 + 5 * id
                    let n = served[pid] ?? 0
                    overshoot.append(n - limit)
                    #expect(n >= limit, "worker \(id) pid \(pid) served \(n) requests, limit \(limit)")
                }
                overshoot.sort()
                print("max-requests overshoot (requests served past the limit) min/median/max: \(overshoot.first ?? -1)/\(overshoot.isEmpty ? -1 : overshoot[overshoot.count / 2])/\(overshoot.last ?? -1) over \(overshoot.count) recycles")
            }
        }

        @Test func maxWorkerLifetime() async throws {
            let run = try await runLoad(["--max-worker-lifetime", "1", "--disable-logging"])
            do {
                let retiring = run.log.filter { $0.contains("retiring worker") }
                #expect(retiring.allSatisfy { $0.hasSuffix(": max-worker-lifetime") })
                for id in 1...2 {
                    let n = retiring.filter { $0.contains("retiring worker \(id) ") }.count
                    #expect(n >= 2, "worker \(id) recycled \(n) times in ~3 s with --max-worker-lifetime 1")
                }
            }
        }

        @Test func reloadOnRSS() async throws {
            // 1 MiB: every worker is over it, so each one asks to be recycled after its first request.
            let run = try await runLoad(["--reload-on-rss", "1", "--disable-logging"])
            do {
                let retiring = run.log.filter { $0.contains("retiring worker") }
                #expect(retiring.count >= 10)
                #expect(retiring.allSatisfy { $0.hasSuffix(": reload-on-rss") })
                let trouble = run.log.filter { $0.contains("cannot fork") || $0.contains("crash-looping") || $0.contains("died") }
                #expect(trouble.isEmpty, "\(trouble.count) lines like: \(trouble.prefix(3))")
            }
        }

        /// uWSGI's master SIGKILLs a worker at its evil RSS limit, busy or not: requests it holds fail, the
        /// replacement serves, and nothing counts as a crash loop.
        @Test func evilReloadOnRSS() async throws {
            let run = try await runLoad(["--evil-reload-on-rss", "1", "--worker-reload-mercy", "2", "--disable-logging"], killing: true)
            do {
                let over = run.log.filter { $0.contains("MiB >= --evil-reload-on-rss 1 MiB: SIGKILL") }
                #expect(over.count >= 4, "expected rounds of 2 workers over the limit, got \(over.count)")
                // 1 MiB is below a fresh worker's RSS: replacements back off, and the log says why.
                #expect(run.log.contains { $0.contains("below a fresh worker's RSS") })
                let trouble = run.log.filter { $0.contains("crash-looping") || $0.contains("died") }
                #expect(trouble.isEmpty, "\(trouble.prefix(3))")
            }
        }
    }
}
