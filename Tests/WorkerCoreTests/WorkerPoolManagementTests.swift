import Testing
import WorkerCore

/// Drives a `WorkerPool` like the master does: forks get pids 101, 102, ... and report ready at once.
private struct ManagementPoolDriver {
    var pool: WorkerPool
    var now: Instant = 1_000_000_000_000
    var nextPID: Int32 = 101
    /// Every action the pool asked for, in order.
    var actions: [WorkerPool.Action] = []

    init(_ config: WorkerPool.Config) { pool = WorkerPool(config: config) }

    /// Feeds `event`, carries out forks (forked + ready), returns the event's own actions.
    @discardableResult
    mutating func send(_ event: WorkerPool.Event, forkAndReady: Bool = true) -> [WorkerPool.Action] {
        let out = pool.handle(event, now: now)
        actions += out
        if forkAndReady {
            for case .fork(let id) in out { _ = fork(id) }
        }
        return out
    }

    mutating func fork(_ id: Int) -> Int32 {
        let pid = nextPID
        nextPID += 1
        actions += pool.handle(.forked(id: id, pid: pid), now: now)
        actions += pool.handle(.workerReady(pid: pid), now: now)
        return pid
    }

    mutating func advance(_ ns: UInt64) { now += ns }

    func pid(ofActive id: Int) -> Int32? { pool.slots.first { $0.id == id && $0.state != .retiring }?.pid }
}

private func forks(_ a: [WorkerPool.Action]) -> [Int] { a.compactMap { if case .fork(let id) = $0 { id } else { nil } } }
private func logs(_ a: [WorkerPool.Action]) -> [String] {
    a.compactMap { switch $0 { case .log(let m), .report(_, let m): m; default: nil } }
}
private let second: UInt64 = 1_000_000_000
private let ms: UInt64 = 1_000_000

private func config(processes: Int = 2, mercy: UInt64 = 60 * second, grace: UInt64 = 0) -> WorkerPool.Config {
    var c = WorkerPool.Config(processes: processes, mercyNanoseconds: mercy)
    c.harakiriGracefulNanoseconds = grace
    return c
}

@Suite struct WorkerPoolHarakiriTests {
    @Test func graceSendsTheGracefulSignalForksTheReplacementThenKillsAtTheDeadline() {
        var d = ManagementPoolDriver(config(grace: 1 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        let out = d.send(.harakiriExpired(pid: pid, request: "GET /sleep/10", ageNanoseconds: 1_003 * ms, listenQueue: nil), forkAndReady: false)
        #expect(out == [.log("HARAKIRI worker 1 (pid \(pid)): GET /sleep/10 running 1003 ms"), .recordHarakiri(pid: pid),
                        .fork(id: 1), .signal(1, pid: pid), .signal(15, pid: pid), .statusChanged])
        let slot = d.pool.slot(pid: pid)!
        #expect(slot.state == .retiring)
        #expect(slot.retireReason == .harakiri)
        #expect(slot.killDeadline == d.now + 1 * second)
        #expect(d.pool.nextDeadline == d.now + 1 * second)
        // The replacement accepts while the stuck worker is still alive.
        let replacement = d.fork(1)
        #expect(d.pool.slot(pid: replacement)?.state == .accepting)
        #expect(d.pool.activeCount == 2)
        #expect(d.pool.slots.count == 3)

        d.advance(1 * second - 1)
        #expect(d.send(.deadlinePassed).isEmpty)
        d.advance(1)
        #expect(d.send(.deadlinePassed) == [.log("worker 1 (pid \(pid)) still running after --harakiri-graceful-timeout: SIGKILL"),
                                             .kill(pid: pid)])
        #expect(d.pool.nextDeadline == nil)
        let exit = d.send(.workerExited(pid: pid, status: .signaled(9)))
        #expect(forks(exit).isEmpty)
        #expect(logs(exit) == ["worker 1 (pid \(pid)) retired: killed by SIGKILL"])
        #expect(d.pool.slots.map(\.pid).sorted() == [d.pid(ofActive: 2)!, replacement].sorted())
        #expect(d.pool.slot(pid: replacement)?.respawns == 1)
    }

    @Test func noGraceKillsAtOnce() {
        var d = ManagementPoolDriver(config(grace: 0))
        d.send(.started)
        let pid = d.pid(ofActive: 2)!
        let out = d.send(.harakiriExpired(pid: pid, request: "GET /x", ageNanoseconds: second, listenQueue: nil), forkAndReady: false)
        #expect(out == [.log("HARAKIRI worker 2 (pid \(pid)): GET /x running 1000 ms"), .recordHarakiri(pid: pid),
                        .fork(id: 2), .kill(pid: pid), .statusChanged])
        #expect(d.pool.slot(pid: pid)?.killDeadline == nil)
    }

    @Test func theGracefulSignalIsConfigurable() {
        var c = config(grace: 500 * ms)
        c.harakiriGracefulSignal = 12
        var d = ManagementPoolDriver(c)
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        let out = d.send(.harakiriExpired(pid: pid, request: "GET /x", ageNanoseconds: second, listenQueue: nil))
        #expect(out.contains(.signal(12, pid: pid)))
        #expect(!out.contains(.kill(pid: pid)))
    }

    @Test func queueThresholdHoldsAndRechecksThenFiresAboveIt() {
        var c = config(grace: 0)
        c.harakiriQueueThreshold = 2
        c.harakiriRecheckNanoseconds = 50 * ms
        var d = ManagementPoolDriver(c)
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        let t0 = d.now
        let held = d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: second, listenQueue: 2))
        #expect(held == [.log("harakiri held for worker 1 (pid \(pid)): GET /slow running 1000 ms, listen queue 2 <= threshold 2")])
        #expect(d.pool.slot(pid: pid)?.state == .accepting)
        #expect(d.pool.nextDeadline == t0 + 50 * ms)
        d.advance(50 * ms - 1)
        #expect(d.send(.deadlinePassed).isEmpty)
        d.advance(1)
        #expect(d.send(.deadlinePassed) == [.checkHarakiri(pid: pid)])
        #expect(d.pool.nextDeadline == nil)
        // Still short: held again, quietly (logged once), next look in another recheck period.
        #expect(d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: 1050 * ms, listenQueue: 0)).isEmpty)
        #expect(d.pool.nextDeadline == d.now + 50 * ms)
        d.advance(50 * ms)
        #expect(d.send(.deadlinePassed) == [.checkHarakiri(pid: pid)])
        // Above the threshold: fires.
        let fired = d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: 1100 * ms, listenQueue: 3), forkAndReady: false)
        #expect(fired == [.log("HARAKIRI worker 1 (pid \(pid)): GET /slow running 1100 ms, listen queue 3"), .recordHarakiri(pid: pid),
                          .fork(id: 1), .kill(pid: pid), .statusChanged])
        #expect(d.pool.nextDeadline == nil, "the recheck must be dropped once harakiri fired")
    }

    @Test func heldRecheckStopsWhenTheWorkerExits() {
        var c = config()
        c.harakiriQueueThreshold = 5
        var d = ManagementPoolDriver(c)
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: second, listenQueue: 0))
        #expect(d.pool.nextDeadline == d.now + c.harakiriRecheckNanoseconds)
        d.send(.workerExited(pid: pid, status: .signaled(11)))
        // Only the respawn of a worker that died young may remain; no recheck of the dead pid.
        d.advance(c.harakiriRecheckNanoseconds)
        #expect(!d.send(.deadlinePassed, forkAndReady: false).contains(.checkHarakiri(pid: pid)))
    }

    @Test func harakiriWhileAlreadyRetiringDoesNotForkTwice() {
        var d = ManagementPoolDriver(config(mercy: 60 * second, grace: 1 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        let recycle = d.send(.recycle(pid: pid, reason: .maxRequests))
        #expect(forks(recycle) == [1])
        let out = d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: second, listenQueue: nil))
        #expect(forks(out).isEmpty)
        #expect(out.contains(.signal(15, pid: pid)))
        #expect(out.contains(.recordHarakiri(pid: pid)))
        #expect(d.pool.slot(pid: pid)?.retireReason == .maxRequests)
        // The grace is shorter than the remaining mercy: it wins.
        #expect(d.pool.slot(pid: pid)?.killDeadline == d.now + 1 * second)
        // A second expiry for the same worker does nothing.
        #expect(d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: 2 * second, listenQueue: nil)).isEmpty)
        #expect(forks(d.actions) == [1, 2, 1])
        #expect(d.pool.activeCount == 2)
    }

    @Test func harakiriKeepsAShorterMercyDeadline() {
        var d = ManagementPoolDriver(config(mercy: 500 * ms, grace: 5 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        d.send(.recycle(pid: pid, reason: .lifetime))
        let deadline = d.now + 500 * ms
        d.advance(100 * ms)
        d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: second, listenQueue: nil))
        #expect(d.pool.slot(pid: pid)?.killDeadline == deadline)
    }

    @Test func harakiriWhileStoppingDoesNotFork() {
        var d = ManagementPoolDriver(config(grace: 1 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        d.send(.gracefulStop)
        let out = d.send(.harakiriExpired(pid: pid, request: "GET /slow", ageNanoseconds: second, listenQueue: nil))
        #expect(forks(out).isEmpty)
        #expect(out.contains(.signal(15, pid: pid)))
    }

    @Test func unknownPIDIsIgnored() {
        var d = ManagementPoolDriver(config())
        d.send(.started)
        #expect(d.send(.harakiriExpired(pid: 9999, request: "GET /", ageNanoseconds: second, listenQueue: nil)).isEmpty)
        #expect(d.send(.recycle(pid: 9999, reason: .rss)).isEmpty)
    }
}

@Suite struct WorkerPoolRecycleTests {
    @Test(arguments: [RetireReason.maxRequests, .rss, .evilRSS, .lifetime])
    func replacementFirstThenHUP(_ reason: RetireReason) {
        var d = ManagementPoolDriver(config(processes: 2, mercy: 2 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 2)!
        let out = d.send(.recycle(pid: pid, reason: reason), forkAndReady: false)
        #expect(out == [.fork(id: 2), .log("retiring worker 2 (pid \(pid)): \(reason.rawValue)"), .signal(1, pid: pid), .statusChanged])
        let slot = d.pool.slot(pid: pid)!
        #expect(slot.state == .retiring)
        #expect(slot.retireReason == reason)
        #expect(slot.killDeadline == d.now + 2 * second)
        // Asking again (the worker's message and the master's own check can race) changes nothing.
        #expect(d.send(.recycle(pid: pid, reason: reason)).isEmpty)
        let replacement = d.fork(2)
        #expect(d.pool.activeCount == 2)
        #expect(d.pool.slot(pid: replacement)?.respawns == 1)
        // The old one finishes cleanly: nothing to log, nothing to fork.
        #expect(d.send(.workerExited(pid: pid, status: .exited(0))) == [.statusChanged])
        #expect(d.pool.slots.count == 2)
    }

    @Test func mercyRunsOutForASlowRetiringWorker() {
        var d = ManagementPoolDriver(config(mercy: 2 * second))
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        d.send(.recycle(pid: pid, reason: .maxRequests))
        d.advance(2 * second)
        #expect(d.send(.deadlinePassed) == [.log("worker 1 (pid \(pid)) still running after --worker-reload-mercy: SIGKILL"), .kill(pid: pid)])
    }

    @Test func noRecyclingWhileStopping() {
        var d = ManagementPoolDriver(config())
        d.send(.started)
        let pid = d.pid(ofActive: 1)!
        d.send(.immediateStop)
        #expect(d.send(.recycle(pid: pid, reason: .maxRequests)).isEmpty)
    }

    @Test func lifetimeDeadlinesAddDeltaPerWorkerID() {
        var c = config(processes: 3, mercy: 60 * second)
        c.maxLifetimeNanoseconds = 10 * second
        c.lifetimeDeltaNanoseconds = 1 * second
        var d = ManagementPoolDriver(c)
        let t0 = d.now
        d.send(.started)
        for id in 1...3 {
            #expect(d.pool.slots.first { $0.id == id }?.recycleAt == t0 + 10 * second + UInt64(id) * second)
        }
        #expect(d.pool.nextDeadline == t0 + 11 * second)
        d.advance(11 * second - 1)
        #expect(d.send(.deadlinePassed).isEmpty)
        d.advance(1)
        let old = d.pid(ofActive: 1)!
        let out = d.send(.deadlinePassed, forkAndReady: false)
        #expect(out == [.fork(id: 1), .log("retiring worker 1 (pid \(old)): max-worker-lifetime"), .signal(1, pid: old), .statusChanged])
        let t1 = d.now
        let replacement = d.fork(1)
        #expect(d.pool.slot(pid: replacement)?.recycleAt == t1 + 11 * second)
        // The retiring worker's lifetime no longer counts; worker 2 is next.
        #expect(d.pool.nextDeadline == t0 + 12 * second)
        d.advance(1 * second)
        #expect(forks(d.send(.deadlinePassed)) == [2])
    }

    @Test func noLifetimeWithoutTheOption() {
        var d = ManagementPoolDriver(config())
        d.send(.started)
        #expect(d.pool.slots.allSatisfy { $0.recycleAt == nil })
        #expect(d.pool.nextDeadline == nil)
    }
}

@Suite struct WorkerPoolResizeTests {
    private func cheaperPool(processes: Int = 4, minimum: Int = 1) -> ManagementPoolDriver {
        var c = config(processes: processes)
        c.minimumWorkers = minimum
        c.initialWorkers = minimum
        var d = ManagementPoolDriver(c)
        d.send(.started)
        return d
    }

    @Test func startsAtTheInitialCount() {
        let d = cheaperPool()
        #expect(d.pool.target == 1)
        #expect(d.pool.activeCount == 1)
        #expect(logs(d.actions).contains("1 workers accepting"))
    }

    @Test func growsWithinTheMaximum() {
        var d = cheaperPool()
        let up = d.send(.resize(by: 2, why: "busy"), forkAndReady: false)
        #expect(up == [.log("cheaper: 1 -> 3 workers (busy)"), .fork(id: 2), .fork(id: 3)])
        for id in forks(up) { _ = d.fork(id) }
        #expect(d.pool.target == 3)
        // Asked for 5 more, only 1 fits under --processes.
        let more = d.send(.resize(by: 5, why: "busier"))
        #expect(logs(more) == ["cheaper: 3 -> 4 workers (busier)"])
        #expect(forks(more) == [4])
        #expect(d.send(.resize(by: 1, why: "still busy")).isEmpty)
        #expect(d.pool.activeCount == 4)
        #expect(Set(d.pool.slots.map(\.id)) == [1, 2, 3, 4])
    }

    @Test func shrinksDownToTheMinimumHighestIDsFirst() {
        var d = cheaperPool(minimum: 2)
        d.send(.resize(by: 2, why: "busy"))
        #expect(d.pool.activeCount == 4)
        let pid4 = d.pid(ofActive: 4)!, pid3 = d.pid(ofActive: 3)!
        let down = d.send(.resize(by: -5, why: "idle"))
        #expect(forks(down).isEmpty)
        #expect(logs(down).first == "cheaper: 4 -> 2 workers (idle)")
        #expect(down.contains(.signal(1, pid: pid4)) && down.contains(.signal(1, pid: pid3)))
        #expect(d.pool.slot(pid: pid4)?.retireReason == .cheaper)
        #expect(d.pool.target == 2)
        #expect(d.pool.activeCount == 2)
        #expect(d.send(.resize(by: -1, why: "idle")).isEmpty)
        // Retired by cheaper: not replaced when they exit.
        #expect(forks(d.send(.workerExited(pid: pid4, status: .exited(0)))).isEmpty)
        // Growing again reuses the freed ids.
        #expect(forks(d.send(.resize(by: 1, why: "busy"))) == [3])
    }

    @Test func noResizeWhileStoppingOrByZero() {
        var d = cheaperPool()
        #expect(d.send(.resize(by: 0, why: "-")).isEmpty)
        d.send(.gracefulStop)
        #expect(d.send(.resize(by: 2, why: "busy")).isEmpty)
    }
}
