// Found by an attack on issue 17's excess rule: with about as many keep-alive clients as workers, a split such
// as 2/1/0 over three workers lasted the whole run (one worker idle, two clients waiting twice as long): no
// worker was above its fair share, so the rule never fired. It now measures a worker against the emptiest other.
import Foundation
import Glibc
import Testing

extension SWSGIIntegration {
    @Suite struct FewClientsShare {
        /// 3 workers, 3 keep-alive clients looping 10 ms requests for 4 s, each reconnecting when the server
        /// closes its connection. Over the last 2 s each client must be answered at least 0.6 times as often as
        /// the most answered one (a 2/1/0 split gives 0.5).
        @Test func asManyClientsAsWorkersEndOneOnEach() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = try Server(["--processes", "3", "--app", "sleep", "--disable-logging"], dir: dir)
            defer { s.stop() }
            #expect(s.waitWorkers(3).count == 3)
            let (results, _) = ConnectionSpread.loopingClients(s, clients: 3, seconds: 4, requestSeconds: 0.01, lateFrom: 2)
            let late = results.map(\.lateAnswered), reconnects = results.map(\.reconnects).reduce(0, +)
            let most = late.max()!, least = late.min()!
            #expect(results.allSatisfy { $0.failure == nil } && least > 0 && Double(least) >= 0.6 * Double(most),
                    "answers per client in the last 2 s: \(late); reconnects: \(reconnects); failures \(results.compactMap(\.failure))")
            // No churn: a handful of moves, not one per few requests.
            #expect(reconnects <= 10, "reconnects: \(reconnects); answers \(late)")
        }
    }
}
