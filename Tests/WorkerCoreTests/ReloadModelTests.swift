import Testing
import WorkerCore

/// Seeded random sequences of reloads (SIGHUP, chain reloads, py-autoreload's word from any worker) with the
/// workers becoming ready and retiring ones exiting in any order. Checked after every step: the scoreboard
/// rows of live workers are distinct, exactly `processes` workers are not retiring (each replaced, never
/// two for one id), and while only chain reloads happen all but one worker accept. A failure names its
/// seed and the steps; the same seed replays it.
@Suite struct ReloadModelTests {
    static func run(seed: UInt64, steps: Int, chainOnly: Bool, lazy: Bool = false, kills: Bool = false) -> String? {
        var r = Random(state: seed)
        let processes = 1 + r.below(4)
        var config = WorkerPool.Config(processes: processes, mercyNanoseconds: 60_000_000_000)
        config.workersLoadTheApp = lazy
        if kills { config.evilRSSLimitBytes = 100 << 20 }
        var pool = WorkerPool(config: config)
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
            if lazy {
                // Replacements that cannot load the app (a broken release, a database down), and time passing
                // (their retries after a back-off).
                for w in starting { choices += [.appLoadFailed(pid: w.pid, status: .exited(22)), .workerExited(pid: w.pid, status: .exited(0))] }
                choices.append(.deadlinePassed)
            }
            if kills {
                // A worker killed for its memory, or stuck past harakiri, while replacements are under way.
                let accepting = pool.slots.filter { $0.state == .accepting }
                for w in accepting {
                    choices.append(.rssSampled(pid: w.pid, bytes: 200 << 20, tookRequest: true))
                    choices.append(.harakiriExpired(pid: w.pid, request: "GET /", ageNanoseconds: 60_000_000_000, listenQueue: nil))
                }
                for w in pool.slots where w.state == .retiring { choices.append(.workerExited(pid: w.pid, status: .signaled(9))) }
                // Fewer workers and back (SIGTTOU, SIGTTIN) in the middle of it.
                choices += [.removeWorker, .addWorker]
            }
            let e = choices[r.below(choices.count)]
            if e == .deadlinePassed { now += 2_000_000_000 }
            trace.append("\(e)")
            feed(e)
            let rows = pool.slots.map(\.scoreboardIndex)
            if Set(rows).count != rows.count { return "seed \(seed) step \(step): a scoreboard row held twice \(rows)\n\(trace.suffix(12))" }
            if kills {
                // Killed workers drop capacity for a while, but a worker id never has two replacements at once, and a
                // worker waiting for its replacement has one under way (starting, or due after a back-off).
                for id in 1...processes {
                    let live = pool.slots.filter { $0.id == id && $0.state != .retiring }
                    if live.filter({ $0.state == .starting }).count > 1 || live.count > 2 {
                        return "seed \(seed) step \(step): worker \(id): \(live)\n\(trace.suffix(12))"
                    }
                    if live.contains(where: { $0.replacedOnReady != nil }) && !live.contains(where: { $0.state == .starting })
                        && pool.nextDeadline == nil {
                        return "seed \(seed) step \(step): worker \(id) waits for a replacement that never comes: \(live)\n\(trace.suffix(12))"
                    }
                }
                continue
            }
            if lazy {
                // Capacity never drops: every id keeps a worker accepting, whatever fails; never more than the
                // worker and its one replacement; never a stop.
                for id in 1...processes {
                    let live = pool.slots.filter { $0.id == id && $0.state != .retiring }
                    if !live.contains(where: { $0.state == .accepting }) || live.count > 2 {
                        return "seed \(seed) step \(step): worker \(id): \(live)\n\(trace.suffix(12))"
                    }
                }
                if pool.stopping { return "seed \(seed) step \(step): stopped\n\(trace.suffix(12))" }
                continue
            }
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

    @Test func lazyReloadsAndFailedImportsNeverDropCapacity() {
        for seed in UInt64(1)...80 {
            if let failure = Self.run(seed: seed, steps: 300, chainOnly: r(seed), lazy: true) {
                Issue.record("\(failure)")
                return
            }
        }
    }

    private func r(_ seed: UInt64) -> Bool { seed % 3 == 0 }

    @Test func lazyReloadsWithKilledWorkersNeverDoubleAReplacement() {
        for seed in UInt64(1)...80 {
            if let failure = Self.run(seed: seed, steps: 300, chainOnly: false, lazy: true, kills: true) {
                Issue.record("\(failure)")
                return
            }
        }
    }
}
