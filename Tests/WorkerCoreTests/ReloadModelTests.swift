import Testing
import WorkerCore

/// Seeded random sequences of reloads (SIGHUP, chain reloads, py-autoreload's word from any worker) with the
/// workers becoming ready and retiring ones exiting in any order. Checked after every step: the scoreboard
/// rows of live workers are distinct, exactly `processes` workers are not retiring (each replaced, never
/// two for one id), and while only chain reloads happen all but one worker accept. A failure names its
/// seed and the steps; the same seed replays it.
@Suite struct ReloadModelTests {
    static func run(seed: UInt64, steps: Int, chainOnly: Bool) -> String? {
        var r = Random(state: seed)
        let processes = 1 + r.below(4)
        var pool = WorkerPool(config: WorkerPool.Config(processes: processes, mercyNanoseconds: 60_000_000_000))
        var now: Instant = 1_000_000_000
        var nextPID: Int32 = 100
        var trace: [String] = []
        func feed(_ e: WorkerPool.Event) {
            var queue = pool.handle(e, now: now)[...]
            while let a = queue.popFirst() {
                if case .fork(let id) = a {
                    nextPID += 1
                    queue = (pool.handle(.forked(id: id, pid: nextPID), now: now) + queue)[...]
                }
            }
        }
        feed(.started)
        for w in pool.slots { feed(.workerReady(pid: w.pid)) }
        for step in 0..<steps {
            now += 1_000_000
            let starting = pool.slots.filter { $0.state == .starting }
            let retiring = pool.slots.filter { $0.state == .retiring }
            var choices: [WorkerPool.Event] = [.chainReload]
            if !chainOnly {
                choices += [.reloadWorkers]
                if !pool.slots.isEmpty { choices.append(.sourceChanged(pid: pool.slots[r.below(pool.slots.count)].pid)) }
            }
            for w in starting { choices += [.workerReady(pid: w.pid), .workerReady(pid: w.pid)] }
            for w in retiring { choices.append(.workerExited(pid: w.pid, status: .exited(0))) }
            let e = choices[r.below(choices.count)]
            trace.append("\(e)")
            feed(e)
            let rows = pool.slots.map(\.scoreboardIndex)
            if Set(rows).count != rows.count { return "seed \(seed) step \(step): a scoreboard row held twice \(rows)\n\(trace.suffix(12))" }
            let active = pool.slots.filter { $0.state != .retiring }
            if active.count != processes || Set(active.map(\.id)).count != processes {
                return "seed \(seed) step \(step): \(active.count) workers not retiring (ids \(active.map(\.id))), want \(processes)\n\(trace.suffix(12))"
            }
            if chainOnly, pool.slots.filter({ $0.state == .accepting }).count < processes - 1 {
                return "seed \(seed) step \(step): a chain reload left fewer than all but one worker accepting: \(pool.slots)\n\(trace.suffix(12))"
            }
        }
        return nil
    }

    @Test func chainReloadsKeepAllButOneWorkerAccepting() {
        for seed in UInt64(1)...60 {
            if let failure = Self.run(seed: seed, steps: 200, chainOnly: true) {
                Issue.record("\(failure)")
                return
            }
        }
    }

    @Test func mixedReloadsReplaceEveryWorkerExactlyOnce() {
        for seed in UInt64(1)...60 {
            if let failure = Self.run(seed: seed, steps: 200, chainOnly: false) {
                Issue.record("\(failure)")
                return
            }
        }
    }
}
