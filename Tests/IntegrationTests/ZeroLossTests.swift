import Foundation
import Glibc
import Posix
import Testing

/// Sends GETs back to back on its own thread until stopped, counting answers and failures.
final class LoadClient: @unchecked Sendable {
    private let lock = NSLock()
    private var stopRequested = false
    private var finished = false
    private(set) var succeeded = 0
    /// Each failure with the reload it happened during (the test bumps `reload` before every HUP).
    private(set) var failures: [(reload: Int, error: String)] = []
    private var reload = 0
    private(set) var answeredBy: Set<pid_t> = []
    let path: String

    init(path: String) { self.path = path }

    func start() {
        let thread = Thread { [self] in
            while !locked({ stopRequested }) {
                let result = httpGet(path, timeoutSeconds: 10)
                locked {
                    switch result {
                    case .success(let r) where r.status == 200:
                        succeeded += 1
                        if let pid = pid_t(r.body) { answeredBy.insert(pid) }
                    case .success(let r): failures.append((reload, "status \(r.status): \(r.body)"))
                    case .failure(let e): failures.append((reload, e.description))
                    }
                }
            }
            locked { finished = true }
        }
        thread.start()
    }

    func stop() throws {
        locked { stopRequested = true }
        try waitUntil(15, "the load client to finish") { locked { finished } }
    }

    func startingReload(_ n: Int) { locked { reload = n } }

    func snapshot() -> (succeeded: Int, failures: [(reload: Int, error: String)], pids: Int) {
        locked { (succeeded, failures, answeredBy.count) }
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}

extension HupwatchIntegration {
    /// Zero-loss: a client sends requests without pause while 20 reloads happen one after another.
    @Suite(.serialized) struct ZeroLoss {
        func twentyReloadsUnderLoad(_ hw: Hupwatch, path: String) throws {
            var pid = try hw.waitServing(1)
            #expect(try answeringPid(path) == pid)
            let fdsBefore = try #require(openFDs(hw.pid))
            let client = LoadClient(path: path)
            client.start()
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
            #expect(openFDs(hw.pid)?.count == fdsBefore.count, "hupwatch holds as many fds as before the 20 reloads")
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
