import Testing
import ReloadCore

typealias Action = ReloadSupervisor.Action

/// Drives a `ReloadSupervisor` through events at a clock the test moves, recording every action.
struct Harness {
    var machine: ReloadSupervisor
    var now: Instant = 1_000 * nanosecondsPerSecond
    var all: [Action] = []

    init(graceful: Double = 5, ready: Double = 10, reloadSignal: Int32 = 15, onExit: OnExit = .exit) {
        machine = ReloadSupervisor(config: .init(gracefulTimeout: UInt64(graceful * 1e9), readyTimeout: UInt64(ready * 1e9),
                                                 reloadSignal: reloadSignal, onExit: onExit))
    }

    @discardableResult
    mutating func send(_ event: ReloadSupervisor.Event) -> [Action] {
        let actions = machine.handle(event, now: now)
        all += actions
        return actions
    }

    mutating func advance(_ seconds: Double) { now += UInt64(seconds * 1e9) }

    /// Moves the clock to the next deadline and delivers it, as the runner's timerfd does.
    @discardableResult
    mutating func fireDeadline(sourceLocation: SourceLocation = #_sourceLocation) -> [Action] {
        guard let d = machine.nextDeadline else {
            Issue.record("no deadline is armed", sourceLocation: sourceLocation)
            return []
        }
        #expect(d >= now, "deadlines never lie in the past", sourceLocation: sourceLocation)
        now = d
        return send(.deadlinePassed)
    }

    /// Starts generation 1 as pid 100 and makes it ready.
    mutating func startServing(pid: Int32 = 100) {
        #expect(send(.started) == [.spawn(generation: 1)])
        send(.spawned(generation: 1, pid: pid))
        advance(0.1)
        send(.ready(generation: 1))
    }

    /// HUP, generation `n` spawned as `pid`: returns the actions of the spawn.
    @discardableResult
    mutating func beginReload(_ n: Int, pid: Int32) -> [Action] {
        let hup = send(.hangup)
        #expect(hup.contains(.spawn(generation: n)))
        return send(.spawned(generation: n, pid: pid))
    }
}

func signals(_ actions: [Action]) -> [(Int32, Int32)] {
    actions.compactMap { if case .signal(let s, let p) = $0 { (s, p) } else { nil } }
}
func spawns(_ actions: [Action]) -> [Int] {
    actions.compactMap { if case .spawn(let n) = $0 { n } else { nil } }
}
func logs(_ actions: [Action]) -> [String] {
    actions.compactMap { if case .log(let m) = $0 { m } else { nil } }
}
func exits(_ actions: [Action]) -> [Int32] {
    actions.compactMap { if case .exit(let c) = $0 { c } else { nil } }
}
func killGroups(_ actions: [Action]) -> [Int32] {
    actions.compactMap { if case .killGroup(let p) = $0 { p } else { nil } }
}
/// True when any action sends a signal (or SIGKILL to the group) to `pid`.
func touches(_ actions: [Action], pid: Int32) -> Bool {
    signals(actions).contains { $0.1 == pid } || killGroups(actions).contains(pid)
}

@Suite struct ReloadSupervisorTests {
    @Test func startAndReady() {
        var h = Harness()
        #expect(h.send(.started) == [.spawn(generation: 1)])
        #expect(h.send(.spawned(generation: 1, pid: 100))
            == [.log("generation 1 started, pid 100"), .watchReadiness(generation: 1), .statusChanged])
        #expect(h.machine.current?.pid == 100)
        #expect(h.machine.current?.state == .starting)
        #expect(h.machine.nextDeadline == h.now + 10 * nanosecondsPerSecond)
        h.advance(0.25)
        #expect(h.send(.ready(generation: 1)) == [
            .stopWatchingReadiness(generation: 1), .guardSocket(generation: 1), .log("generation 1 is ready (250ms)"),
            .notifySupervisor("READY=1\nSTATUS=generation 1 serving, pid 100"), .statusChanged,
        ])
        #expect(h.machine.current?.state == .ready)
        #expect(h.machine.nextDeadline == nil, "an idle supervisor arms no timer")
        #expect(h.machine.lastReload == nil)
        // A second ready report changes nothing.
        #expect(h.send(.ready(generation: 1)) == [])
    }

    @Test func firstGenerationSlowToBeReadyKeepsRunning() {
        var h = Harness(ready: 2)
        h.send(.started)
        h.send(.spawned(generation: 1, pid: 100))
        let a = h.fireDeadline()
        #expect(a == [.log("generation 1 has not reported ready within 2s; it keeps running")])
        #expect(h.machine.current?.pid == 100)
        #expect(h.machine.nextDeadline == nil)
    }

    @Test func normalReload() {
        var h = Harness(graceful: 5)
        h.startServing()
        h.advance(10)
        #expect(h.send(.hangup) == [.log("reload: starting generation 2"),
                                    .notifySupervisor("RELOADING=1\nSTATUS=reloading: starting generation 2"),
                                    .spawn(generation: 2)])
        #expect(h.send(.spawned(generation: 2, pid: 200)) == [
            .pauseGuard, .log("generation 2 started, pid 200; generation 1 serves until it is ready"),
            .watchReadiness(generation: 2), .statusChanged,
        ])
        #expect(h.machine.currentNumber == 1)
        #expect(h.machine.pendingNumber == 2)
        h.advance(0.5)
        let ready = h.send(.ready(generation: 2))
        #expect(ready == [
            .stopWatchingReadiness(generation: 2), .guardSocket(generation: 2),
            .log("generation 2 is ready (500ms); retiring generation 1"),
            .stopWatchingReadiness(generation: 1), .signal(15, pid: 100),
            .notifySupervisor("READY=1\nSTATUS=generation 2 serving, pid 200"), .statusChanged,
        ])
        #expect(h.machine.currentNumber == 2)
        #expect(h.machine.pendingNumber == nil)
        #expect(h.machine.generation(1)?.state == .draining)
        #expect(h.machine.nextDeadline == h.now + 5 * nanosecondsPerSecond, "the graceful timeout runs")
        let outcome = h.machine.lastReload
        #expect(outcome?.generation == 2 && outcome?.succeeded == true && outcome?.reason == "ready")
        #expect(outcome?.durationNanoseconds == 500_000_000)
        h.advance(1)
        let exited = h.send(.childExited(pid: 100, status: .exited(0)))
        #expect(exited == [.stopWatchingReadiness(generation: 1), .killGroup(pgid: 100),
                           .log("generation 1 exited (exit status 0), 11.6s after it started"), .statusChanged])
        #expect(h.machine.generations.map(\.pid) == [200])
        #expect(h.machine.nextDeadline == nil)
        #expect(exits(h.all).isEmpty)
    }

    @Test func reloadSignalIsConfigurable() {
        var h = Harness(reloadSignal: 3)
        h.startServing()
        h.beginReload(2, pid: 200)
        #expect(signals(h.send(.ready(generation: 2))).map { $0.0 } == [3])
    }

    @Test func newGenerationDyingBeforeReadyRollsBack() {
        var h = Harness()
        h.startServing()
        h.beginReload(2, pid: 200)
        h.advance(0.2)
        let a = h.send(.childExited(pid: 200, status: .exited(1)))
        #expect(a.filter { $0 != .statusChanged } == [
            .stopWatchingReadiness(generation: 2), .killGroup(pgid: 200),
            .log("reload failed: generation 2 exited before it was ready (exit status 1); rolling back, generation 1 keeps serving"),
            .guardSocket(generation: 1), .notifySupervisor("READY=1\nSTATUS=reload failed, generation 1 serving"),
        ])
        #expect(a.last == .statusChanged)
        #expect(!touches(h.all, pid: 100), "the old generation never gets a signal")
        #expect(h.machine.currentNumber == 1)
        #expect(h.machine.pendingNumber == nil)
        #expect(h.machine.current?.state == .ready)
        #expect(h.machine.generations.count == 1)
        #expect(h.machine.lastReload?.succeeded == false)
        #expect(h.machine.lastReload?.generation == 2)
        #expect(h.machine.lastReload?.reason == "exited before it was ready (exit status 1)")
        #expect(h.machine.nextDeadline == nil)
        // The next HUP tries again with a new number.
        #expect(spawns(h.send(.hangup)) == [3])
    }

    @Test func newGenerationKilledBeforeReady() {
        var h = Harness()
        h.startServing()
        h.beginReload(2, pid: 200)
        let a = h.send(.childExited(pid: 200, status: .signaled(11)))
        #expect(logs(a).contains { $0.contains("exited before it was ready (signal 11)") })
        #expect(!touches(h.all, pid: 100))
        #expect(exits(h.all).isEmpty)
    }

    @Test func readyTimeoutRollsBack() {
        var h = Harness(graceful: 3, ready: 2)
        h.startServing()
        h.beginReload(2, pid: 200)
        let started = h.now
        #expect(h.machine.nextDeadline == started + 2 * nanosecondsPerSecond)
        h.advance(1)
        #expect(h.send(.deadlinePassed) == [], "nothing is due before the deadline")
        let a = h.fireDeadline()
        #expect(h.now == started + 2 * nanosecondsPerSecond)
        #expect(a == [
            .log("reload failed: generation 2 was not ready within 2s; rolling back, generation 1 keeps serving"),
            .stopWatchingReadiness(generation: 2), .signal(15, pid: 200),
            .guardSocket(generation: 1), .notifySupervisor("READY=1\nSTATUS=reload failed, generation 1 serving"), .statusChanged,
        ])
        #expect(h.machine.currentNumber == 1)
        #expect(h.machine.generation(2)?.state == .draining)
        #expect(h.machine.lastReload?.reason == "was not ready within 2s")
        // A late ready from the rolled-back generation is ignored.
        #expect(h.send(.ready(generation: 2)) == [])
        #expect(h.machine.currentNumber == 1)
        // It ignores the reload signal too: SIGKILL to its group after the graceful timeout.
        let k = h.fireDeadline()
        #expect(h.now == started + 5 * nanosecondsPerSecond)
        #expect(killGroups(k) == [200])
        #expect(logs(k).first?.contains("SIGKILL to its process group") == true)
        #expect(h.machine.nextDeadline == nil)
        h.send(.childExited(pid: 200, status: .signaled(9)))
        #expect(!touches(h.all, pid: 100), "the old generation never gets a signal")
        #expect(h.machine.generations.map(\.pid) == [100])
        #expect(exits(h.all).isEmpty)
    }

    @Test func hangupStormDuringReloadCoalescesIntoOneMoreReload() {
        var h = Harness()
        h.startServing()
        h.beginReload(2, pid: 200)
        for _ in 0..<50 {
            let a = h.send(.hangup)
            #expect(a == [.log("SIGHUP during a reload: one more reload follows once generation 2 is settled")])
        }
        let ready2 = h.send(.ready(generation: 2))
        #expect(spawns(ready2) == [3], "exactly one more reload")
        #expect(ready2.last == .spawn(generation: 3), "it starts after generation 2 took over")
        h.send(.spawned(generation: 3, pid: 300))
        h.send(.childExited(pid: 100, status: .exited(0)))
        let ready3 = h.send(.ready(generation: 3))
        #expect(spawns(ready3).isEmpty)
        #expect(signals(ready3).map { $0.1 } == [200])
        h.send(.childExited(pid: 200, status: .exited(0)))
        #expect(spawns(h.all) == [1, 2, 3])
        #expect(h.machine.generations.map(\.number) == [3])
        #expect(spawns(h.send(.hangup)) == [4], "the queue is empty again")
    }

    @Test func hangupDuringFailedReloadStillReloadsOnce() {
        var h = Harness()
        h.startServing()
        h.beginReload(2, pid: 200)
        h.send(.hangup)
        h.send(.hangup)
        let a = h.send(.childExited(pid: 200, status: .exited(1)))
        #expect(spawns(a) == [3])
        h.send(.spawned(generation: 3, pid: 300))
        #expect(spawns(h.send(.ready(generation: 3))).isEmpty)
        #expect(h.machine.currentNumber == 3)
    }

    @Test func terminateDuringReloadSignalsBothAndExitsWithServingStatus() {
        var h = Harness(graceful: 5)
        h.startServing()
        h.beginReload(2, pid: 200)
        let t = h.send(.terminate(signal: 2))
        #expect(t == [.notifySupervisor("STOPPING=1"), .pauseGuard, .signal(2, pid: 100), .signal(2, pid: 200)])
        #expect(h.machine.stopping)
        #expect(h.send(.hangup) == [.log("SIGHUP ignored: stopping")])
        // The new generation goes first; its status is not hupwatch's.
        let a = h.send(.childExited(pid: 200, status: .exited(9)))
        #expect(exits(a).isEmpty)
        #expect(spawns(a).isEmpty)
        let b = h.send(.childExited(pid: 100, status: .exited(7)))
        #expect(exits(b) == [7])
        #expect(b.last == .exit(7))
    }

    @Test func terminateDuringReloadServingGenerationFirst() {
        var h = Harness()
        h.startServing()
        h.beginReload(2, pid: 200)
        h.send(.terminate(signal: 15))
        let a = h.send(.childExited(pid: 100, status: .signaled(15)))
        #expect(exits(a).isEmpty, "generation 2 is still running")
        #expect(spawns(a).isEmpty)
        let b = h.send(.childExited(pid: 200, status: .exited(0)))
        #expect(exits(b) == [143], "128 + 15: the serving generation died by SIGTERM")
    }

    @Test func terminateWithNothingRunningExitsAtOnce() {
        var h = Harness()
        h.send(.started)
        #expect(h.send(.terminate(signal: 15)) == [.notifySupervisor("STOPPING=1"), .pauseGuard, .exit(0)])
    }

    @Test func gracefulTimeoutKillsTheGroup() {
        var h = Harness(graceful: 1.5)
        h.startServing()
        let t = h.send(.terminate(signal: 15))
        #expect(signals(t).map { $0.1 } == [100])
        #expect(h.machine.nextDeadline == h.now + 1_500_000_000)
        h.advance(1)
        #expect(h.send(.deadlinePassed) == [])
        let k = h.fireDeadline()
        #expect(k == [.log("generation 1 (pid 100) still running 1.5s after it was told to stop: SIGKILL to its process group"),
                      .killGroup(pgid: 100)])
        #expect(h.machine.nextDeadline == nil, "SIGKILL is sent once")
        let e = h.send(.childExited(pid: 100, status: .signaled(9)))
        #expect(e.last == .exit(137))
    }

    @Test func secondTerminateKeepsTheFirstDeadline() {
        var h = Harness(graceful: 2)
        h.startServing()
        h.send(.terminate(signal: 15))
        let deadline = h.machine.nextDeadline
        h.advance(1)
        let again = h.send(.terminate(signal: 2))
        #expect(again == [.signal(2, pid: 100)], "forwarded again, without a second STOPPING=1")
        #expect(h.machine.nextDeadline == deadline)
    }

    @Test func forwardedSignalsGoToTheServingGeneration() {
        var h = Harness()
        #expect(h.send(.forward(signal: 10)) == [.log("no running generation to forward signal 10 to")])
        h.startServing()
        #expect(h.send(.forward(signal: 10)) == [.signal(10, pid: 100)])
        h.beginReload(2, pid: 200)
        #expect(h.send(.forward(signal: 12)) == [.signal(12, pid: 100)], "the old one serves until the new one is ready")
        h.send(.ready(generation: 2))
        #expect(h.send(.forward(signal: 28)) == [.signal(28, pid: 200)])
    }

    @Test func onExitExit() {
        var h = Harness(onExit: .exit)
        h.startServing()
        let a = h.send(.childExited(pid: 100, status: .exited(3)))
        #expect(a == [.stopWatchingReadiness(generation: 1), .killGroup(pgid: 100),
                      .log("generation 1 exited (exit status 3); hupwatch exits with status 3"), .pauseGuard,
                      .statusChanged, .exit(3)])
    }

    @Test func onExitExitBySignal() {
        var h = Harness(onExit: .exit)
        h.startServing()
        #expect(exits(h.send(.childExited(pid: 100, status: .signaled(9)))) == [137])
    }

    @Test func onExitRestartBacksOffDoubling() {
        var h = Harness(onExit: .restart)
        h.startServing()
        var pid: Int32 = 100
        var expectedWait: UInt64 = 500_000_000
        var waits: [UInt64] = []
        for n in 2...9 {
            let crashedAt = h.now
            let a = h.send(.childExited(pid: pid, status: .signaled(9)))
            #expect(exits(a).isEmpty)
            #expect(spawns(a).isEmpty, "no restart before the back-off")
            #expect(logs(a).last == "restarting in \(formatDuration(expectedWait))")
            #expect(h.machine.current == nil)
            let wait = h.machine.nextDeadline! - crashedAt
            waits.append(wait)
            #expect(wait == expectedWait)
            #expect(h.fireDeadline() == [.spawn(generation: n)])
            pid = Int32(n * 100)
            h.send(.spawned(generation: n, pid: pid))
            #expect(h.machine.currentNumber == n)
            h.advance(0.01)
            // It dies again before it is ready: the back-off keeps growing.
            expectedWait = min(expectedWait * 2, 30 * nanosecondsPerSecond)
        }
        #expect(waits.map { $0 / 1_000_000 } == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000])
        // Once a restarted generation is ready, the back-off starts over.
        h.send(.ready(generation: 9))
        h.send(.childExited(pid: 900, status: .exited(1)))
        #expect(h.machine.nextDeadline! - h.now == 500_000_000)
    }

    @Test func crashWithRestartPausesTheGuard() {
        var h = Harness(onExit: .restart)
        h.startServing()
        // The dead generation's listener must not be put back while its replacement rebinds the path.
        let a = h.send(.childExited(pid: 100, status: .signaled(9)))
        #expect(a == [.stopWatchingReadiness(generation: 1), .killGroup(pgid: 100), .log("generation 1 exited (signal 9)"),
                      .pauseGuard, .log("restarting in 500ms"), .statusChanged])
        #expect(h.fireDeadline() == [.spawn(generation: 2)])
        h.send(.spawned(generation: 2, pid: 200))
        #expect(h.send(.ready(generation: 2)).contains(.guardSocket(generation: 2)), "the guard follows the new listener")
    }

    @Test func hangupWhileWaitingToRestartStartsAtOnce() {
        var h = Harness(onExit: .restart)
        h.startServing()
        h.send(.childExited(pid: 100, status: .exited(1)))
        let a = h.send(.hangup)
        #expect(a == [.log("reload: starting a generation (none is running)"), .spawn(generation: 2)])
        h.send(.spawned(generation: 2, pid: 200))
        #expect(h.machine.currentNumber == 2)
        // The restart deadline was cancelled: only the ready deadline remains.
        #expect(h.machine.nextDeadline == h.now + 10 * nanosecondsPerSecond)
    }

    @Test func terminateWhileWaitingToRestartExits() {
        var h = Harness(onExit: .restart)
        h.startServing()
        h.send(.childExited(pid: 100, status: .signaled(9)))
        let a = h.send(.terminate(signal: 15))
        #expect(a.last == .exit(137), "the last serving generation's status")
        #expect(h.machine.nextDeadline == nil)
    }

    @Test func servingGenerationDyingDuringReloadHandsOver() {
        var h = Harness(onExit: .exit)
        h.startServing()
        h.beginReload(2, pid: 200)
        let a = h.send(.childExited(pid: 100, status: .exited(1)))
        #expect(logs(a).contains("generation 1 exited (exit status 1) during a reload; generation 2 takes over"))
        #expect(exits(a).isEmpty, "--on-exit exit does not apply while a replacement is starting")
        #expect(h.machine.currentNumber == 2)
        #expect(h.machine.pendingNumber == nil)
        let r = h.send(.ready(generation: 2))
        #expect(signals(r).isEmpty)
        #expect(r.contains(.guardSocket(generation: 2)))
    }

    @Test func unknownPidReapedIsOnlyLogged() {
        var h = Harness()
        h.startServing()
        let a = h.send(.childExited(pid: 4242, status: .signaled(9)))
        #expect(a == [.log("reaped pid 4242 (signal 9): a descendant left to hupwatch")])
        #expect(h.machine.generations.map(\.pid) == [100])
    }

    @Test func spawnFailureAtStartExits() {
        var h = Harness()
        h.send(.started)
        #expect(h.send(.spawnFailed(generation: 1, reason: "app: execve(/x/app): No such file or directory", shellCode: 127))
            == [.log("cannot start app: execve(/x/app): No such file or directory"), .exit(127)])
        var h2 = Harness()
        h2.send(.started)
        #expect(exits(h2.send(.spawnFailed(generation: 1, reason: "app: Permission denied", shellCode: 126))) == [126])
    }

    @Test func spawnFailureDuringReloadRollsBack() {
        var h = Harness()
        h.startServing()
        h.send(.hangup)
        let a = h.send(.spawnFailed(generation: 2, reason: "chdir(/srv/current): No such file or directory", shellCode: 126))
        #expect(a == [
            .log("reload failed: cannot start generation 2: chdir(/srv/current): No such file or directory; generation 1 keeps serving"),
            .guardSocket(generation: 1), .notifySupervisor("READY=1\nSTATUS=reload failed, generation 1 serving"), .statusChanged,
        ])
        #expect(h.machine.lastReload?.succeeded == false)
        #expect(h.machine.currentNumber == 1)
        #expect(!touches(h.all, pid: 100))
        #expect(spawns(h.send(.hangup)) == [3])
    }

    @Test func spawnFailureOfRestartKeepsBackingOff() {
        var h = Harness(onExit: .restart)
        h.startServing()
        h.send(.childExited(pid: 100, status: .exited(1)))
        #expect(h.fireDeadline() == [.spawn(generation: 2)])
        let a = h.send(.spawnFailed(generation: 2, reason: "x", shellCode: 127))
        #expect(exits(a).isEmpty)
        #expect(logs(a) == ["cannot start generation 2: x", "restarting in 1s"])
        #expect(h.fireDeadline() == [.spawn(generation: 3)])
    }
}
