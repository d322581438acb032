import Testing
import WorkerCore

/// Issue 10, item 5: every value validation lets through must be safe to compute with. These run in
/// child processes (exit tests): on today's main each one traps on an arithmetic overflow.
@Suite struct HugeValues {
    @Test func hugeLifetimeAndDeltaWithManyWorkersDoNotTrap() async {
        await #expect(processExitsWith: .success) {
            var config = WorkerPool.Config(processes: 20, mercyNanoseconds: 1_000_000_000 * 1_000_000_000)
            config.maxLifetimeNanoseconds = 1_000_000_000 * 1_000_000_000
            config.lifetimeDeltaNanoseconds = 999_999_999 * 1_000_000_000
            config.harakiriGracefulNanoseconds = 1_000_000_000 * 1_000_000_000
            var pool = WorkerPool(config: config)
            let now: Instant = 5_000_000_000
            var pid: Int32 = 100
            for case .fork(let id) in pool.handle(.started, now: now) {
                pid += 1
                _ = pool.handle(.forked(id: id, pid: pid), now: now)
                _ = pool.handle(.workerReady(pid: pid), now: now)
            }
            _ = pool.handle(.harakiriExpired(pid: 101, request: "GET /", ageNanoseconds: .max, listenQueue: nil), now: now)
            _ = pool.handle(.reloadWorkers, now: .max - 1)
            _ = pool.handle(.deadlinePassed, now: .max)
            _ = pool.handle(.gracefulStop, now: .max)
        }
    }

    @Test func maxRequestsPerWorkerSaturates() async {
        await #expect(processExitsWith: .success) {
            let n = maxRequests(base: 9_223_372_036_854_775_000, delta: 1000, workerID: 4096)
            precondition(n == Int.max)
            precondition(maxRequests(base: 100, delta: 10, workerID: 3) == 130)
            precondition(maxRequests(base: 0, delta: 10, workerID: 3) == 0)
        }
    }

    @Test func harakiriSecondsFromAnAppAreClamped() async {
        await #expect(processExitsWith: .success) {
            precondition(nanoseconds(seconds: .infinity) == nil, "infinity means no shorter limit")
            precondition(nanoseconds(seconds: .nan) == nil)
            precondition(nanoseconds(seconds: -1) == nil)
            precondition(nanoseconds(seconds: 0) == nil)
            precondition(nanoseconds(seconds: 1e300) == nil)
            precondition(nanoseconds(seconds: 1.5) == 1_500_000_000)
            precondition(UInt64.max.saturatingAdd(5) == .max)
            precondition(UInt64(3).saturatingAdd(4) == 7)
            precondition(UInt64.max.saturatingMultiply(2) == .max)
        }
    }
}
