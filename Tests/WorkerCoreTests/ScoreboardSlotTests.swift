import Testing
import WorkerCore

/// Issue 10, item 4: the pool owns the scoreboard rows. A HUP storm while every old generation is busy
/// (retiring workers hold their rows until they exit) must never leave the site without an accepting
/// worker, never hand one row to two live workers, and say truthfully why a replacement waits.
@Suite struct ScoreboardSlots {
    @Test func hupStormDuringLongRequestsNeverExhaustsTheTable() {
        var config = WorkerPool.Config(processes: 1, mercyNanoseconds: 60_000_000_000)
        config.scoreboardSlots = 4
        var pool = WorkerPool(config: config)
        var now: Instant = 1_000_000_000
        var nextPID: Int32 = 100
        var logs: [String] = []
        func run(_ actions: [WorkerPool.Action]) {
            var queue = actions[...]
            while let a = queue.popFirst() {
                switch a {
                case .fork(let id):
                    #expect(pool.scoreboardIndex(forFork: id) != nil, "a fork always has its row reserved")
                    nextPID += 1
                    queue = (pool.handle(.forked(id: id, pid: nextPID), now: now) + queue)[...]
                    queue = (pool.handle(.workerReady(pid: nextPID), now: now) + queue)[...]
                case .log(let m), .report(_, let m): logs.append(m)
                default: break
                }
            }
        }
        run(pool.handle(.started, now: now))
        for _ in 0..<20 {
            now += 100_000_000
            run(pool.handle(.reloadWorkers, now: now))
            let live = pool.slots
            #expect(live.contains { $0.state == .accepting }, "an accepting worker after every HUP")
            #expect(Set(live.map(\.scoreboardIndex)).count == live.count, "no row shared: \(live.map(\.scoreboardIndex))")
            #expect(live.allSatisfy { $0.scoreboardIndex < pool.scoreboardCapacity })
        }
        #expect(pool.slots.count == 4, "the table bounds the live processes")
        #expect(logs.filter { $0.contains("scoreboard slots are held") }.count == 1, "one truthful line: \(logs)")
        #expect(!logs.contains { $0.contains("crash") })
        // The oldest retiring worker finishes: its row goes to the deferred replacement.
        let oldest = pool.slots.first { $0.state == .retiring }!
        run(pool.handle(.workerExited(pid: oldest.pid, status: .exited(0)), now: now))
        #expect(pool.slots.count == 4)
        #expect(pool.slots.filter { $0.state != .retiring }.count == 1)
    }
}
