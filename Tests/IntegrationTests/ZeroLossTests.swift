import Foundation
import Glibc
import Posix
import Testing

extension HupwatchIntegration {
    /// Zero-loss: a client sends requests without pause while 20 reloads happen one after another.
    @Suite(.serialized) struct ZeroLoss {
        func twentyReloadsUnderLoad(_ hw: Hupwatch, path: String) throws {
            var pid = try hw.waitServing(1)
            #expect(try answeringPid(path) == pid)
            // Counted once generation 1 is settled, as after the reloads: a readiness check or start-up pipe in
            // flight is not a leak.
            _ = try hw.waitStatus(10, "generation 1 alone") { $0.settled }
            let fdsBefore = try #require(openFDs(hw.pid))
            // One client, no pause, 10 s per request.
            let client = LoadClient(path: path, concurrency: 1, timeoutSeconds: 10, pauseMicroseconds: 0)
            var stopped = false
            defer { if !stopped { try? client.stop() } }
            try waitUntil(10, "the client's first answers") { client.snapshot().succeeded >= 20 }
            for n in 2...21 {
                client.startingReload(n - 1)
                hw.signal(SIGHUP)
                let next = try hw.waitServing(n)
                #expect(hw.status()?.last_reload?.outcome == "succeeded")
                #expect(next != pid)
                pid = next
                // Let some requests reach the new generation before the next reload.
                let mark = client.snapshot().succeeded
                try waitUntil(10, "requests after reload \(n - 1)") { client.snapshot().succeeded >= mark + 20 }
            }
            try client.stop()
            stopped = true
            // Once the last old generation is gone, nothing of the reloads may still hold an fd.
            _ = try hw.waitStatus(10, "generation 21 alone") { $0.settled }
            let fdsAfter = openFDs(hw.pid) ?? []
            #expect(fdsAfter.count == fdsBefore.count,
                    "hupwatch holds as many fds as before the 20 reloads: \(fdsAfter.map { "\($0)=\(fdTarget(hw.pid, $0) ?? "?")" })")
            let result = client.snapshot()
            let byError = Dictionary(grouping: result.failures, by: \.error).mapValues(\.count)
            let reloadsHit = Set(result.failures.map(\.reload)).sorted()
            let summary = "\(result.succeeded) requests answered by \(result.pids) pids across 20 reloads, \(result.failures.count) failed"
                + (result.failures.isEmpty ? "" : " during reloads \(reloadsHit) (\(reloadsHit.count) of 20): \(byError)")
            print("zero-loss (\(path.hasSuffix("l.sock") ? "--listen" : "rebind")): \(summary)")
            #expect(result.failures.count == 0, "\(summary)")
            #expect(result.succeeded > 400)
            #expect(result.pids >= 21, "every generation answered")
            hw.signal(SIGTERM)
            #expect(try hw.waitExit() == 0)
        }

        @Test func noRequestLostAcrossReloadsInRebindMode() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let s = dir.file("s.sock")
            let hw = try Hupwatch(["--ready", "socket:\(s)", "--", try binary("TestChild"), "--socket", s], dir: dir)
            defer { hw.kill() }
            try twentyReloadsUnderLoad(hw, path: s)
        }

        @Test func noRequestLostAcrossReloadsInListenMode() throws {
            let dir = try TempDir()
            defer { dir.remove() }
            let l = dir.file("l.sock")
            let hw = try Hupwatch(["--listen", l, "--ready", "notify", "--", try binary("TestChild"), "--notify"], dir: dir)
            defer { hw.kill() }
            try twentyReloadsUnderLoad(hw, path: l)
        }
    }
}
