import Testing
import WorkerCore

/// Plays the master's part for a `WorkerPool`: gives every fork a pid (feeding `.forked` back, as the
/// master does) and records what the pool asked for.
private struct LifecycleDriver {
    var pool: WorkerPool
    var now: Instant = 1_000_000_000_000
    var nextPID: Int32 = 100
    var logs: [String] = []
    var notes: [String] = []
    var signals: [(sig: Int32, pid: Int32)] = []
    var kills: [Int32] = []
    var forks: [(id: Int, pid: Int32)] = []
    var exitCode: Int32?

    init(processes: Int, mercySeconds: UInt64 = 60, initial: Int? = nil) {
        var config = WorkerPool.Config(processes: processes, mercyNanoseconds: mercySeconds * 1_000_000_000)
        config.initialWorkers = initial
        pool = WorkerPool(config: config)
    }

    @discardableResult
    mutating func send(_ event: WorkerPool.Event) -> [WorkerPool.Action] {
        var done: [WorkerPool.Action] = []
        var queue = pool.handle(event, now: now)[...]
        while let a = queue.popFirst() {
            done.append(a)
            switch a {
            case .fork(let id):
                nextPID += 1
                forks.append((id, nextPID))
                queue = (pool.handle(.forked(id: id, pid: nextPID), now: now) + queue)[...]
            case .signal(let sig, let pid): signals.append((sig, pid))
            case .kill(let pid): kills.append(pid)
            case .log(let m), .report(_, let m): logs.append(m)
            case .notify(let n): notes.append(n)
            case .exit(let c): exitCode = c
            default: break
            }
        }
        return done
    }

    /// Every starting worker reports that it accepts.
    mutating func readyAll() {
        for w in pool.slots where w.state == .starting { send(.workerReady(pid: w.pid)) }
    }

    mutating func start() {
        send(.started)
        readyAll()
    }

    mutating func advance(seconds: Double) { now += UInt64(seconds * 1e9) }

    /// Advances to the pool's next deadline and tells it so.
    mutating func runDeadline() {
        guard let d = pool.nextDeadline else { return }
        now = max(now, d)
        send(.deadlinePassed)
    }

    var pids: [Int32] { pool.slots.map(\.pid) }
    var activeIDs: [Int] { pool.slots.filter { $0.state != .retiring }.map(\.id).sorted() }
    func signalled(_ sig: Int32) -> [Int32] { signals.filter { $0.sig == sig }.map(\.pid) }
}

@Suite struct WorkerPoolTests {
    @Test func startForksEveryWorkerAndAnnouncesReadyOnceAllAccept() {
        var d = LifecycleDriver(processes: 3)
        d.send(.started)
        #expect(d.forks.map(\.id) == [1, 2, 3])
        #expect(d.pool.slots.allSatisfy { $0.state == .starting })
        d.send(.workerReady(pid: d.pids[0]))
        d.send(.workerReady(pid: d.pids[1]))
        #expect(d.notes.isEmpty, "READY=1 only when all accept")
        d.send(.workerReady(pid: d.pids[2]))
        #expect(d.notes == ["READY=1\nSTATUS=3 workers accepting"])
        #expect(d.logs.contains("3 workers accepting"))
        d.send(.workerReady(pid: d.pids[2]))
        #expect(d.notes.count == 1, "a repeated report changes nothing")
        #expect(d.pool.announcedReady)
        #expect(d.pool.nextDeadline == nil, "nothing to wake the master for")
    }

    @Test func workerDyingAfterTheCrashWindowIsRespawnedAtOnce() {
        var d = LifecycleDriver(processes: 2)
        d.start()
        d.advance(seconds: 5)
        let victim = d.pool.slots[0]
        d.send(.workerExited(pid: victim.pid, status: .signaled(9)))
        #expect(d.logs.last == "worker 1 (pid \(victim.pid)) died (killed by SIGKILL); respawning")
        #expect(d.forks.last?.id == 1)
        #expect(d.activeIDs == [1, 2])
        #expect(d.pool.slot(pid: d.forks.last!.pid)?.respawns == 1)
        #expect(d.pool.slot(pid: victim.pid) == nil)
    }

    @Test func crashLoopingWorkerIsRespawnedWithDoublingBackoff() {
        var d = LifecycleDriver(processes: 1)
        d.start()
        var waits: [UInt64] = []
        for _ in 0..<10 {
            let pid = d.pids[0]
            let forksBefore = d.forks.count
            d.send(.workerExited(pid: pid, status: .exited(1)))  // dies young
            #expect(d.forks.count == forksBefore, "no tight respawn loop")
            let due = try! #require(d.pool.nextDeadline)
            waits.append((due - d.now) / 1_000_000)
            d.send(.deadlinePassed)
            #expect(d.forks.count == forksBefore, "nothing before the backoff ends")
            d.runDeadline()
            #expect(d.forks.count == forksBefore + 1)
            d.readyAll()
        }
        // The back-off both programs share (Common's Backoff.restart).
        #expect(waits == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000])
        // A worker that lived past the window starts the backoff over.
        d.advance(seconds: 2)
        d.send(.workerExited(pid: d.pids[0], status: .exited(1)))
        #expect(d.pool.slots.count == 1, "respawned at once")
        d.send(.workerExited(pid: d.pids[0], status: .exited(1)))
        #expect(d.logs.last == "worker 1 is crash-looping: next respawn in 500 ms")
    }

    @Test func forkFailureIsRetriedLater() {
        var d = LifecycleDriver(processes: 1)
        d.send(.forkFailed(id: 1, reason: "EAGAIN"))
        #expect(d.logs.first == "cannot fork worker 1: EAGAIN")
        #expect(d.pool.nextDeadline == d.now + Backoff.restart.initialNanoseconds)
        d.runDeadline()
        #expect(d.forks.map(\.id) == [1])
    }

    @Test func gracefulStopSignalsEveryWorkerAndExitsWhenTheLastIsGone() {
        var d = LifecycleDriver(processes: 3)
        d.start()
        d.send(.gracefulStop)
        #expect(d.notes.last == "STOPPING=1")
        #expect(Set(d.signalled(WorkerPool.sigUSR1)) == Set(d.pids))
        #expect(d.pool.slots.allSatisfy { $0.state == .retiring })
        d.send(.gracefulStop)
        #expect(d.notes.filter { $0 == "STOPPING=1" }.count == 1 && d.signals.count == 3, "a second SIGTERM changes nothing")
        let pids = d.pids
        d.send(.workerExited(pid: pids[0], status: .exited(0)))
        d.send(.workerExited(pid: pids[1], status: .signaled(11)))  // even a crash is not respawned now
        #expect(d.forks.count == 3)
        #expect(d.exitCode == nil)
        #expect(d.logs.contains("worker 2 (pid \(pids[1])) retired: killed by SIGSEGV"))
        d.send(.workerExited(pid: pids[2], status: .exited(0)))
        #expect(d.exitCode == 0)
        #expect(d.send(.reloadWorkers).isEmpty, "no reload while stopping")
    }

    @Test func workerReloadMercyKillsWhatIsStillRunning() {
        var d = LifecycleDriver(processes: 2, mercySeconds: 1)
        d.start()
        d.send(.gracefulStop)
        let pids = d.pids
        d.send(.workerExited(pid: pids[0], status: .exited(0)))
        #expect(d.pool.nextDeadline == d.now + 1_000_000_000)
        d.advance(seconds: 0.5)
        d.send(.deadlinePassed)
        #expect(d.kills.isEmpty)
        d.runDeadline()
        #expect(d.kills == [pids[1]])
        d.send(.workerExited(pid: pids[1], status: .signaled(9)))
        #expect(d.exitCode == 0)
    }

    @Test func immediateStopUsesSIGINTAndAtMostThreeSecondsOfMercy() {
        var d = LifecycleDriver(processes: 2, mercySeconds: 60)
        d.start()
        d.send(.immediateStop)
        #expect(Set(d.signalled(WorkerPool.sigINT)) == Set(d.pids))
        #expect(d.pool.nextDeadline == d.now + 3_000_000_000)
        d.runDeadline()
        #expect(Set(d.kills) == Set(d.pids))
    }

    @Test func stopWithNoLiveWorkerExitsAtOnceAndCancelsRespawns() {
        var d = LifecycleDriver(processes: 1)
        d.start()
        d.send(.workerExited(pid: d.pids[0], status: .exited(1)))  // crash-looping: respawn pending
        #expect(d.pool.nextDeadline != nil)
        d.send(.gracefulStop)
        #expect(d.exitCode == 0)
        #expect(d.pool.nextDeadline == nil)
    }

    @Test func reloadForksReplacementsBeforeRetiringAndAnnouncesReadyAfterThem() {
        var d = LifecycleDriver(processes: 2)
        d.start()
        let old = d.pids
        let actions = d.send(.reloadWorkers)
        #expect(d.notes.last == "RELOADING=1")
        // Each old worker's replacement is forked before the old one is told to retire.
        for pid in old {
            let hup = actions.firstIndex(of: .signal(WorkerPool.sigHUP, pid: pid))!
            let id = d.pool.slot(pid: pid)!.id
            let fork = actions.firstIndex(of: .fork(id: id))!
            #expect(fork < hup)
        }
        #expect(d.pool.slots.filter { $0.state == .retiring }.map(\.pid) == old)
        #expect(d.activeIDs == [1, 2])
        let fresh = d.pool.slots.filter { $0.state == .starting }.map(\.pid)
        d.send(.workerReady(pid: fresh[0]))
        #expect(d.notes.last == "RELOADING=1", "READY=1 waits for every replacement")
        d.send(.workerReady(pid: fresh[1]))
        #expect(d.notes.last == "READY=1\nSTATUS=workers reloaded")
        let logged = d.logs.count
        for pid in old { d.send(.workerExited(pid: pid, status: .exited(0))) }
        #expect(d.forks.count == 4, "retired workers are not respawned")
        #expect(d.logs.count == logged, "a clean retirement is not worth a line")
        #expect(d.pool.slots.map(\.pid) == fresh)
    }

    /// uWSGI's chain reload: one worker at a time, the next only once the previous replacement accepts,
    /// so all but one keep accepting throughout; a second touch meanwhile is ignored, as uWSGI does.
    @Test func chainReloadReplacesOneWorkerAtATime() {
        var d = LifecycleDriver(processes: 3)
        d.start()
        let old = d.pids
        d.send(.chainReload)
        #expect(d.notes.last == "RELOADING=1")
        for (n, pid) in old.enumerated() {
            #expect(d.signalled(WorkerPool.sigHUP) == Array(old[...n]), "worker \(n + 1)'s turn: \(d.signalled(WorkerPool.sigHUP))")
            #expect(d.pool.slots.filter { $0.state == .accepting }.count == 2, "all but one accept")
            #expect(d.pool.slots.filter { $0.state == .starting }.count == 1)
            if n == 0 {
                d.send(.chainReload)
                #expect(d.logs.last?.contains("already running") == true)
            }
            d.send(.workerExited(pid: pid, status: .exited(0)))
            #expect(d.signalled(WorkerPool.sigHUP).count == n + 1, "the next waits for the replacement to accept, not for the old one to exit")
            d.readyAll()
        }
        #expect(d.logs.last == "chain reload complete")
        #expect(d.notes.last == "READY=1\nSTATUS=workers reloaded")
        #expect(Set(d.pids).isDisjoint(with: old) && d.activeIDs == [1, 2, 3])
    }

    /// py-autoreload: the first worker to see a change reloads every worker; the same word from workers
    /// already retiring (each worker notices the change) is no second reload.
    @Test func sourceChangedReloadsOnceWhateverTheNumberOfWorkersNoticing() {
        var d = LifecycleDriver(processes: 2)
        d.start()
        let old = d.pids
        d.send(.sourceChanged(pid: old[0]))
        #expect(d.signalled(WorkerPool.sigHUP) == old)
        d.send(.sourceChanged(pid: old[1]))
        #expect(d.forks.count == 4, "one reload: \(d.forks)")
        d.send(.gracefulStop)
        #expect(d.send(.sourceChanged(pid: d.pids.last!)).isEmpty, "no reload while stopping")
    }

    @Test func gracefulStopDuringReloadLeavesRetiringWorkersToFinish() {
        var d = LifecycleDriver(processes: 1)
        d.start()
        let old = d.pids[0]
        d.send(.reloadWorkers)
        let fresh = d.pool.slots.first { $0.state == .starting }!.pid
        d.send(.gracefulStop)
        #expect(d.signalled(WorkerPool.sigUSR1) == [fresh])
        #expect(d.signalled(WorkerPool.sigHUP) == [old])
        d.send(.workerExited(pid: old, status: .exited(0)))
        #expect(d.exitCode == nil)
        d.send(.workerExited(pid: fresh, status: .exited(0)))
        #expect(d.exitCode == 0)
    }

    @Test func ttinAndTtouStayWithinOneAndProcesses() {
        var d = LifecycleDriver(processes: 3)
        d.start()
        d.send(.addWorker)
        #expect(d.logs.last == "SIGTTIN: already at --processes 3")
        #expect(d.forks.count == 3)
        d.send(.removeWorker)
        #expect(d.logs.contains("SIGTTOU: workers 3 -> 2"))
        let victim = d.pool.slots.first { $0.id == 3 }!
        #expect(victim.state == .retiring && victim.retireReason == .shrink)
        #expect(d.signalled(WorkerPool.sigHUP) == [victim.pid])
        d.send(.workerExited(pid: victim.pid, status: .exited(0)))
        d.send(.removeWorker)
        d.send(.removeWorker)
        #expect(d.logs.last == "SIGTTOU: keeping the last worker")
        #expect(d.pool.target == 1)
        #expect(d.activeIDs == [1])
        d.send(.addWorker)
        #expect(d.logs.last == "SIGTTIN: workers 1 -> 2")
        #expect(d.forks.last?.id == 2, "the lowest free id")
        #expect(d.activeIDs == [1, 2])
    }

    /// freeID() looks only at live slots, so SIGTTIN while a crashed worker waits for its respawn hands out
    /// that worker's id: two workers end up with the same id and the highest id is missing.
    @Test func ttinWhileARespawnIsPendingKeepsIDsUnique() {
        var d = LifecycleDriver(processes: 3, initial: 2)
        d.start()
        #expect(d.activeIDs == [1, 2])
        let two = d.pool.slots.first { $0.id == 2 }!.pid
        d.send(.workerExited(pid: two, status: .signaled(9)))  // young: respawn of id 2 pending
        d.send(.addWorker)
        d.runDeadline()
        d.readyAll()
        #expect(d.activeIDs == [1, 2, 3])
        #expect(d.activeIDs.count == 3)
    }
}

/// Issue 19's pool events: a group TERM told apart from a TERM to one worker, evil RSS, app-load failure.
@Suite struct WorkerPoolProcessSideTests {
    func pool(_ processes: Int = 2, configure: (inout WorkerPool.Config) -> Void = { _ in }) -> (WorkerPool, [Int32]) {
        var config = WorkerPool.Config(processes: processes, mercyNanoseconds: 30_000_000_000)
        configure(&config)
        var p = WorkerPool(config: config)
        var pids: [Int32] = []
        for case .fork(let id) in p.handle(.started, now: 1) {
            let pid = Int32(100 + id)
            _ = p.handle(.forked(id: id, pid: pid), now: 1)
            pids.append(pid)
        }
        for pid in pids { _ = p.handle(.workerReady(pid: pid), now: 2) }
        return (p, pids)
    }

    @Test func termToOneWorkerReplacesItOnceTheGroupWindowHasPassed() {
        var (p, pids) = pool()
        let t: Instant = 5_000_000_000
        #expect(p.handle(.workerGotTERM(pid: pids[0]), now: t) == [.statusChanged])
        // It leaves before the window ends: no crash, no "died".
        #expect(p.handle(.workerExited(pid: pids[0], status: .exited(0)), now: t + 10) == [.statusChanged])
        let due = try! #require(p.nextDeadline)
        let out = p.handle(.deadlinePassed, now: due)
        #expect(out.contains(.fork(id: 1)), "\(out)")
        #expect(out.contains(.log("retiring worker 1 (pid 101): SIGTERM to the worker")))
        #expect(!p.stopping)
    }

    /// A worker TERMed as it starts (an app that signals its own worker in its import, found by an attack: forked
    /// three times a second for ever) is replaced after a back-off that doubles.
    @Test func aWorkerTERMedAsItStartsIsReplacedAfterABackOff() {
        var (p, _) = pool(1)
        var t: Instant = 3
        var pid: Int32 = 101
        var forks: [Instant] = []
        for _ in 0..<4 {
            _ = p.handle(.workerGotTERM(pid: pid), now: t)
            _ = p.handle(.workerExited(pid: pid, status: .exited(0)), now: t + 1)
            var forked = false
            while !forked, t < 600_000_000_000 {
                t = max(t + 1, p.nextDeadline ?? t + 1)
                forked = p.handle(.deadlinePassed, now: t).contains(.fork(id: 1))
            }
            #expect(forked)
            forks.append(t)
            pid += 1
            _ = p.handle(.forked(id: 1, pid: pid), now: t)
        }
        let gaps = zip(forks.dropFirst(), forks).map { $0 - $1 }
        #expect(gaps.count == 3 && gaps[1] > gaps[0] && gaps[2] > gaps[1], "back-off doubles: \(gaps)")
        #expect(!p.stopping)
    }

    /// The workers' TERM may reach the master before its own (the kernel queues a group signal process
    /// by process, and a worker on the other core runs at once): still a group TERM, nothing replaced.
    @Test func workersTERMBeforeTheMastersIsStillAGroupTERM() {
        var (p, pids) = pool()
        _ = p.handle(.workerGotTERM(pid: pids[0]), now: 10)
        _ = p.handle(.workerGotTERM(pid: pids[1]), now: 11)
        let stop = p.handle(.gracefulStop, now: 12)
        #expect(stop.contains(where: { if case .log(let m) = $0 { m.contains("whole process group") } else { false } }), "\(stop)")
        #expect(!stop.contains(where: { if case .fork = $0 { true } else { false } }))
        _ = p.handle(.workerExited(pid: pids[0], status: .exited(0)), now: 13)
        #expect(p.handle(.workerExited(pid: pids[1], status: .exited(0)), now: 14).contains(.exit(0)))
        #expect(p.handle(.deadlinePassed, now: 1_000_000_000).allSatisfy { if case .fork = $0 { false } else { true } })
    }

    @Test func termToTheGroupIsLoggedOnceAndReplacesNothing() {
        var (p, pids) = pool()
        let stop = p.handle(.gracefulStop, now: 10)
        #expect(stop.contains(.log("graceful shutdown (SIGTERM to the master): serving queued connections and in-flight requests")))
        let first = p.handle(.workerGotTERM(pid: pids[0]), now: 10)
        #expect(first.count == 1 && p.groupTERMSeen, "\(first)")
        #expect(p.handle(.workerGotTERM(pid: pids[1]), now: 10) == [])
        _ = p.handle(.workerExited(pid: pids[0], status: .exited(0)), now: 11)
        #expect(p.handle(.workerExited(pid: pids[1], status: .exited(0)), now: 11).contains(.exit(0)))
    }

    @Test func evilRSSKillsABusyWorkerOnceAndForksItsReplacement() {
        var (p, pids) = pool { $0.evilRSSLimitBytes = 300 << 20 }
        let t: Instant = 5_000_000_000
        #expect(p.handle(.rssSampled(pid: pids[0], bytes: 299 << 20, tookRequest: false), now: t) == [])
        let out = p.handle(.rssSampled(pid: pids[0], bytes: 300 << 20, tookRequest: false), now: t)
        #expect(out.contains(.kill(pid: pids[0])) && out.contains(.fork(id: 1)), "\(out)")
        #expect(p.handle(.rssSampled(pid: pids[0], bytes: 900 << 20, tookRequest: false), now: t + 1).isEmpty, "killed once")
        let exit = p.handle(.workerExited(pid: pids[0], status: .signaled(9)), now: t + 2)
        #expect(!exit.contains(where: { if case .report(_, let m) = $0 { m.contains("died") } else { false } }), "\(exit)")
    }

    @Test func lazyWorkerEndingBeforeReadyStopsThePoolWithTheAppLoadStatus() {
        var config = WorkerPool.Config(processes: 2, mercyNanoseconds: 30_000_000_000)
        config.workersLoadTheApp = true
        var p = WorkerPool(config: config)
        for case .fork(let id) in p.handle(.started, now: 1) { _ = p.handle(.forked(id: id, pid: Int32(100 + id)), now: 1) }
        let out = p.handle(.workerExited(pid: 101, status: .exited(0)), now: 2)
        #expect(p.stopping && !out.contains(.fork(id: 1)), "no respawn: \(out)")
        #expect(out.contains(.signal(WorkerPool.sigINT, pid: 102)))
        #expect(p.handle(.workerExited(pid: 102, status: .signaled(2)), now: 3).contains(.exit(ExitCode.appLoadFailed)))
    }

    @Test func appLoadFailureAfterForkStopsEvenWithoutLazyApps() {
        var config = WorkerPool.Config(processes: 1, mercyNanoseconds: 30_000_000_000)
        var p = WorkerPool(config: config)
        config.workersLoadTheApp = false
        _ = p.handle(.started, now: 1)
        _ = p.handle(.forked(id: 1, pid: 101), now: 1)
        let out = p.handle(.appLoadFailed(pid: 101, status: .exited(ExitCode.appLoadFailed)), now: 2)
        #expect(out.contains(.exit(ExitCode.appLoadFailed)), "\(out)")
    }
}

extension WorkerPoolProcessSideTests {
    /// Cheaper decides inside the pool from `.busySampled`: quiet cycles add up across samples.
    @Test func cheaperScalesDownAfterQuietSamples() {
        var (p, _) = pool(3) {
            $0.minimumWorkers = 1
            $0.cheaper = CheaperBusyness.Config(minimumWorkers: 1, maximumWorkers: 3, step: 1, busynessMin: 25, busynessMax: 50,
                                                multiplier: 2, backlogAlert: 33, backlogStep: 1, rssSoftBytes: 0, rssHardBytes: 0)
        }
        var removed = 0
        for i in 0..<20 {
            let out = p.handle(.busySampled(busyPercent: 0, listenQueue: 0, totalRSSBytes: 0), now: UInt64(10 + i))
            removed += out.filter { if case .signal(WorkerPool.sigHUP, _) = $0 { true } else { false } }.count
        }
        #expect(removed == 2 && p.activeCount == 1, "\(removed) removed, \(p.activeCount) active")
    }
}

extension WorkerPoolProcessSideTests {
    /// A hostile limit: --evil-reload-on-rss below a fresh worker's RSS. Each replacement would be killed
    /// at its first sample, four forks a second for ever; the pool backs off and says why instead.
    @Test func evilRSSLimitBelowAFreshWorkerBacksOff() {
        var (p, pids) = pool(1) { $0.evilRSSLimitBytes = 1 << 20 }
        let out = p.handle(.rssSampled(pid: pids[0], bytes: 5 << 20, tookRequest: false), now: 250_000_000)
        #expect(out.contains(.kill(pid: pids[0])))
        #expect(!out.contains(.fork(id: 1)), "no immediate replacement: \(out)")
        #expect(out.contains(where: { if case .report(.notStarted, let m) = $0 { m.contains("below a fresh worker") } else { false } }), "\(out)")
        #expect(p.nextDeadline == 250_000_000 + Backoff.restart.initialNanoseconds)
        _ = p.handle(.workerExited(pid: pids[0], status: .signaled(9)), now: 260_000_000)
        #expect(p.handle(.deadlinePassed, now: 250_000_000 + Backoff.restart.initialNanoseconds).contains(.fork(id: 1)))
    }
}

extension WorkerPoolProcessSideTests {
    /// Idle workers TERMed with the group can be gone before the master reads its own TERM: the group line
    /// still comes out, before the exit (the master stops carrying out actions at `.exit`).
    @Test func groupTERMLineComesBeforeTheExitWhenTheWorkersAreAlreadyGone() {
        var (p, pids) = pool()
        for pid in pids {
            _ = p.handle(.workerGotTERM(pid: pid), now: 10)
            _ = p.handle(.workerExited(pid: pid, status: .exited(0)), now: 11)
        }
        let out = p.handle(.gracefulStop, now: 12)
        let group = out.firstIndex { if case .log(let m) = $0 { m.contains("whole process group") } else { false } }
        let exit = out.firstIndex(of: .exit(0))
        #expect(group != nil && exit != nil && group! < exit!, "\(out)")
    }
}

extension WorkerPoolProcessSideTests {
    /// A fresh worker that grows past --evil-reload-on-rss (or -as) while serving a request is the app's
    /// growth, not a limit below a fresh worker: replaced at once, however young, and no back-off builds up
    /// over a run of such requests (attack: five growing requests in a row left no worker for 8 s).
    @Test(arguments: [false, true]) func evilLimitReachedByAYoungBusyWorkerReplacesItAtOnce(addressSpace: Bool) {
        var (p, pids) = pool(1) {
            if addressSpace { $0.evilAddressSpaceLimitBytes = 100 << 20 } else { $0.evilRSSLimitBytes = 100 << 20 }
        }
        func sample(_ pid: Int32, _ bytes: Int, took: Bool, _ now: Instant) -> [WorkerPool.Action] {
            p.handle(addressSpace ? .addressSpaceSampled(pid: pid, bytes: bytes, tookRequest: took)
                                  : .rssSampled(pid: pid, bytes: bytes, tookRequest: took), now: now)
        }
        var pid = pids[0]
        var now: Instant = 5_000_000_000
        for round in 0..<5 {
            // Ready and small before its request, then over the limit a few hundred ms after its start.
            #expect(sample(pid, 12 << 20, took: false, now + 1).isEmpty)
            let out = sample(pid, 160 << 20, took: true, now + 300_000_000)
            #expect(out.contains(.kill(pid: pid)) && out.contains(.fork(id: 1)), "round \(round): replaced at once: \(out)")
            #expect(!out.contains(where: { if case .report(.notStarted, _) = $0 { true } else { false } }), "round \(round): \(out)")
            _ = p.handle(.workerExited(pid: pid, status: .signaled(9)), now: now + 300_000_001)
            now += 300_000_002
            pid += 10
            _ = p.handle(.forked(id: 1, pid: pid), now: now)
            _ = p.handle(.workerReady(pid: pid), now: now + 1)
        }
        // Once a sample has seen a request, a later one without the flag does not make the worker fresh again.
        let _ = sample(pid, 12 << 20, took: true, now + 2)
        let late = sample(pid, 160 << 20, took: false, now + 3)
        #expect(late.contains(.fork(id: 1)), "\(late)")
        // Over the limit already as it reported ready: backs off even if a request reached it before the sample.
        _ = p.handle(.workerExited(pid: pid, status: .signaled(9)), now: now + 4)
        _ = p.handle(.deadlinePassed, now: now + 4)
        pid += 10
        now += 10
        _ = p.handle(.forked(id: 1, pid: pid), now: now)
        #expect(p.handle(.freshSizeSampled(pid: pid, rssBytes: addressSpace ? nil : 160 << 20, addressSpaceBytes: addressSpace ? 160 << 20 : nil),
                         now: now + 1).isEmpty, "the ready sample kills nothing itself")
        let overAtReady = sample(pid, 160 << 20, took: true, now + 2)
        #expect(overAtReady.contains(.kill(pid: pid)) && !overAtReady.contains(.fork(id: 1)), "\(overAtReady)")
        // A fresh worker over the limit before any request still backs off, as before.
        _ = p.handle(.workerExited(pid: pid, status: .signaled(9)), now: now + 4)
        now += 1_000_000_000
        #expect(p.handle(.deadlinePassed, now: now).contains(.fork(id: 1)), "respawned after its back-off")
        pid += 10
        _ = p.handle(.forked(id: 1, pid: pid), now: now)
        let fresh = sample(pid, 160 << 20, took: false, now + 6)
        #expect(!fresh.contains(.fork(id: 1)) && fresh.contains(where: { if case .report(.notStarted, let m) = $0 { m.contains("before any request") } else { false } }),
                "\(fresh)")
    }

    /// SIGINT/SIGQUIT give a busy worker 3 s, not --worker-reload-mercy: the SIGKILL line names that deadline.
    @Test func immediateStopKillLineNamesItsOwnDeadline() {
        var (p, pids) = pool(1)
        _ = p.handle(.immediateStop, now: 10)
        let out = p.handle(.deadlinePassed, now: 10 + WorkerPool.immediateStopNanoseconds)
        #expect(out == [.log("worker 1 (pid \(pids[0])) still running after the immediate stop's 3 s (SIGINT/SIGQUIT): SIGKILL"),
                        .kill(pid: pids[0])], "\(out)")
        // With a mercy shorter than 3 s, the mercy is the deadline that applied.
        var (q, qpids) = pool(1) { $0.mercyNanoseconds = 1_000_000_000 }
        _ = q.handle(.immediateStop, now: 10)
        #expect(q.handle(.deadlinePassed, now: 10 + 1_000_000_000)
                == [.log("worker 1 (pid \(qpids[0])) still running after --worker-reload-mercy: SIGKILL"), .kill(pid: qpids[0])])
        // A graceful stop turned immediate: the earlier (3 s) deadline, named as such.
        var (r, rpids) = pool(1)
        _ = r.handle(.gracefulStop, now: 10)
        _ = r.handle(.immediateStop, now: 20)
        #expect(r.handle(.deadlinePassed, now: 20 + WorkerPool.immediateStopNanoseconds).first
                == .log("worker 1 (pid \(rpids[0])) still running after the immediate stop's 3 s (SIGINT/SIGQUIT): SIGKILL"))
    }
}

/// --lazy-apps replacements first (found by an attack): an old worker serves until its replacement has imported the
/// app and is ready, and a replacement that cannot load the app once workers have served (a broken release, a
/// database down at import) neither stops swsgi nor takes the old worker out: it is retried with a back-off.
extension WorkerPoolProcessSideTests {
    private func hups(_ out: [WorkerPool.Action]) -> [Int32] {
        out.compactMap { if case .signal(WorkerPool.sigHUP, let pid) = $0 { pid } else { nil } }
    }

    @Test func aLazyReloadRetiresEachOldWorkerOnlyOnceItsReplacementIsReady() {
        var (p, pids) = pool(2) { $0.workersLoadTheApp = true }
        let out = p.handle(.reloadWorkers, now: 10)
        #expect(out.contains(.fork(id: 1)) && out.contains(.fork(id: 2)), "\(out)")
        #expect(hups(out).isEmpty, "old workers keep accepting while replacements import: \(out)")
        _ = p.handle(.forked(id: 1, pid: 201), now: 11)
        _ = p.handle(.forked(id: 2, pid: 202), now: 11)
        #expect(p.activeCount == 2)
        #expect(hups(p.handle(.workerReady(pid: 201), now: 12)) == [pids[0]])
        #expect(p.slots.first { $0.pid == pids[1] }?.state == .accepting)
        #expect(hups(p.handle(.workerReady(pid: 202), now: 13)) == [pids[1]])
        // A second reload while nothing waits replaces the new ones.
        #expect(p.handle(.reloadWorkers, now: 14).contains(.fork(id: 1)))
    }

    @Test func aLazyReplacementThatCannotLoadTheAppKeepsTheOldWorkerServing() {
        var (p, pids) = pool(2) { $0.workersLoadTheApp = true }
        _ = p.handle(.reloadWorkers, now: 10)
        _ = p.handle(.forked(id: 1, pid: 201), now: 11)
        _ = p.handle(.forked(id: 2, pid: 202), now: 11)
        let failed = p.handle(.appLoadFailed(pid: 201, status: .exited(ExitCode.appLoadFailed)), now: 12)
        #expect(!p.stopping && !failed.contains(where: { if case .exit = $0 { true } else { false } }), "\(failed)")
        #expect(hups(failed).isEmpty && p.slots.first { $0.pid == pids[0] }?.state == .accepting, "\(failed)")
        // A lazy worker that ended in its import (any way) is the same.
        let ended = p.handle(.workerExited(pid: 202, status: .exited(0)), now: 12)
        #expect(!p.stopping && hups(ended).isEmpty, "\(ended)")
        // Retried after a back-off; the old worker retires once a retry is ready.
        var retried: [WorkerPool.Action] = []
        var t: Instant = 13
        while !retried.contains(.fork(id: 1)) && t < 60_000_000_000 { t += 100_000_000; retried = p.handle(.deadlinePassed, now: t) }
        #expect(retried.contains(.fork(id: 1)), "retried")
        _ = p.handle(.forked(id: 1, pid: 301), now: t)
        #expect(hups(p.handle(.workerReady(pid: 301), now: t + 1)) == [pids[0]])
        // The old worker dying while its replacement starts is not replaced twice.
        while !p.handle(.deadlinePassed, now: t).contains(.fork(id: 2)) && t < 120_000_000_000 { t += 100_000_000 }
        let died = p.handle(.workerExited(pid: pids[1], status: .signaled(9)), now: t + 1)
        #expect(!died.contains(.fork(id: 2)), "\(died)")
    }

    @Test func withoutLazyAppsAWorkerEndingBeforeAnyWasReadyStopsThePool() {
        var p = WorkerPool(config: WorkerPool.Config(processes: 2, mercyNanoseconds: 30_000_000_000))
        for case .fork(let id) in p.handle(.started, now: 1) { _ = p.handle(.forked(id: id, pid: Int32(100 + id)), now: 1) }
        let out = p.handle(.workerExited(pid: 101, status: .signaled(11)), now: 2)
        #expect(p.stopping && !out.contains(.fork(id: 1)), "a post-fork crash would loop for ever: \(out)")
        #expect(p.handle(.workerExited(pid: 102, status: .signaled(2)), now: 3).contains(.exit(ExitCode.appLoadFailed)))
        // Once one has been ready, a worker dying young is respawned as before (after a back-off).
        var (q, pids) = pool(2)
        let again = q.handle(.workerExited(pid: pids[0], status: .signaled(11)), now: 3)
        #expect(!q.stopping && !again.contains(where: { if case .exit = $0 { true } else { false } }), "\(again)")
    }
}

extension WorkerPoolProcessSideTests {
    /// Fewer workers (SIGTTOU, cheaper) while --lazy-apps replacements start: the id goes whole, the old worker and
    /// its replacement both, and no worker is left waiting for a replacement that never comes.
    @Test func fewerWorkersDuringALazyReloadRetiresTheWholeID() {
        var (p, pids) = pool(2) { $0.workersLoadTheApp = true }
        _ = p.handle(.reloadWorkers, now: 10)
        _ = p.handle(.forked(id: 1, pid: 201), now: 11)
        _ = p.handle(.forked(id: 2, pid: 202), now: 11)
        let out = p.handle(.removeWorker, now: 12)
        let hupped = out.compactMap { if case .signal(WorkerPool.sigHUP, let pid) = $0 { pid } else { nil } }
        #expect(Set(hupped) == [pids[1], 202], "\(out)")
        _ = p.handle(.workerExited(pid: 202, status: .exited(0)), now: 13)
        _ = p.handle(.workerExited(pid: pids[1], status: .exited(0)), now: 13)
        #expect(p.handle(.workerReady(pid: 201), now: 14).contains(.signal(WorkerPool.sigHUP, pid: pids[0])))
        #expect(p.activeCount == 1 && p.slots.allSatisfy { $0.replacedOnReady == nil })
    }
}

extension WorkerPoolProcessSideTests {
    /// A TERM to an old --lazy-apps worker waiting for its replacement leaves one replacement for its id (found by an
    /// attack: the TERM's own replacement came on top: two `worker 1` for --processes 1).
    @Test func aTERMToAWorkerWaitingForItsReplacementForksNoSecond() {
        var (p, pids) = pool(1) { $0.workersLoadTheApp = true }
        _ = p.handle(.reloadWorkers, now: 5_000_000_000)
        _ = p.handle(.forked(id: 1, pid: 201), now: 5_000_000_001)
        _ = p.handle(.workerGotTERM(pid: pids[0]), now: 5_000_000_002)
        _ = p.handle(.workerExited(pid: pids[0], status: .exited(0)), now: 5_000_000_003)
        var t: Instant = 5_000_000_003
        var forks = 0
        while t < 20_000_000_000 {
            t += 100_000_000
            forks += p.handle(.deadlinePassed, now: t).filter { $0 == .fork(id: 1) }.count
        }
        #expect(forks == 0, "a second replacement for worker 1")
        _ = p.handle(.workerReady(pid: 201), now: t)
        #expect(p.activeCount == 1 && p.slots.filter { $0.state != .retiring }.count == 1)
    }

    /// A HUP while a replacement that could not load the app waits out its back-off tries again at once (found by an
    /// attack: after the release was fixed, the reload did nothing until the back-off, up to 30 s, had passed).
    @Test func aReloadRetriesAFailedReplacementAtOnce() {
        var (p, _) = pool(1) { $0.workersLoadTheApp = true }
        var t: Instant = 5_000_000_000
        _ = p.handle(.reloadWorkers, now: t)
        var pid: Int32 = 200
        // Three failed imports: the back-off grows.
        for _ in 0..<3 {
            pid += 1
            _ = p.handle(.forked(id: 1, pid: pid), now: t)
            _ = p.handle(.appLoadFailed(pid: pid, status: .exited(22)), now: t + 1)
            var forked = false
            while !forked { t += 100_000_000; forked = p.handle(.deadlinePassed, now: t).contains(.fork(id: 1)) }
        }
        pid += 1
        _ = p.handle(.forked(id: 1, pid: pid), now: t)
        _ = p.handle(.appLoadFailed(pid: pid, status: .exited(22)), now: t + 1)
        let reload = p.handle(.reloadWorkers, now: t + 2)
        #expect(reload.contains(.fork(id: 1)), "retried at once: \(reload)")
    }
}
