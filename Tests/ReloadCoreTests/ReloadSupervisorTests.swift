import Testing
@testable import ReloadCore

typealias Action = ReloadSupervisor.Action

/// Drives the supervisor like the runner does: each spawn is answered at once with the next pid.
struct Driver {
    var machine: ReloadSupervisor
    var now: Instant = 1_000_000_000
    var nextPid: Int32 = 100

    init(_ configure: (inout ReloadSupervisor.Config) -> Void = { _ in }) {
        var c = ReloadSupervisor.Config(gracefulTimeout: 30 * nanosecondsPerSecond, readyTimeout: 5 * nanosecondsPerSecond,
                                        reloadSignal: 15, onExit: .exit)
        c.readiness = .notify
        configure(&c)
        machine = ReloadSupervisor(config: c)
    }

    /// Feeds the event and every spawn result, returning all actions in order.
    mutating func send(_ event: ReloadSupervisor.Event) -> [Action] {
        var out: [Action] = []
        var queue = [event]
        while !queue.isEmpty {
            let actions = machine.handle(queue.removeFirst(), now: now)
            out += actions
            for case .spawn(let n) in actions {
                queue.append(.spawned(generation: n, pid: nextPid))
                nextPid += 1
            }
        }
        return out
    }

    mutating func advance(_ seconds: Double) -> [Action] {
        now += UInt64(seconds * 1e9)
        var out: [Action] = []
        while let d = machine.nextDeadline, d <= now { out += send(.deadlinePassed) }
        return out
    }

    func pid(_ n: Int) -> Int32 { machine.generation(n)!.pid }
}

func signals(_ a: [Action]) -> [(Int32, Int32)] { a.compactMap { if case .signal(let s, let p) = $0 { (s, p) } else { nil } } }
func spawns(_ a: [Action]) -> [Int] { a.compactMap { if case .spawn(let n) = $0 { n } else { nil } } }
func exits(_ a: [Action]) -> [Int32] { a.compactMap { if case .exit(let c) = $0 { c } else { nil } } }
func guards(_ a: [Action]) -> [ReloadSupervisor.GuardCommand] { a.compactMap { if case .setGuard(let g) = $0 { g } else { nil } } }
func logs(_ a: [Action]) -> [String] { a.compactMap { if case .log(let m) = $0 { m } else { nil } } }

@Suite struct ReloadSupervisorTests {
    @Test func startReloadRetire() {
        var d = Driver()
        #expect(spawns(d.send(.started)) == [1])
        #expect(d.machine.mode == .reloading(serving: nil, pending: 1, queued: false))
        _ = d.send(.notified(generation: 1, ready: true))
        #expect(d.machine.mode == .running(serving: 1))
        #expect(spawns(d.send(.hangup)) == [2])
        let a = d.send(.notified(generation: 2, ready: true))
        #expect(signals(a).map(\.1) == [100])
        #expect(guards(a) == [.follow(generation: 2)])
        #expect(d.machine.mode == .running(serving: 2))
        #expect(d.machine.lastReload?.succeeded == true)
        _ = d.send(.childExited(pid: 100, status: .exited(0)))
        #expect(d.machine.generations.map(\.number) == [2])
    }

    /// Issue 9, item 4: ready 1, HUP, 2 starting, HUP, 1 dies, 2 ready: generation 3 must follow.
    @Test func hupQueuedWhileTheServingGenerationDiesIsNotLost() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        _ = d.send(.hangup)
        #expect(d.machine.mode == .reloading(serving: 1, pending: 2, queued: true))
        _ = d.send(.childExited(pid: d.pid(1), status: .signaled(9)))
        #expect(d.machine.mode == .reloading(serving: nil, pending: 2, queued: true))
        #expect(spawns(d.send(.notified(generation: 2, ready: true))) == [3])
        _ = d.send(.notified(generation: 3, ready: true))
        #expect(d.machine.mode == .running(serving: 3))
    }

    /// After a rollback, the queue is empty: no reload nobody asked for starts later.
    @Test func noStaleQueuedReloadAfterARollback() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        _ = d.send(.childExited(pid: d.pid(2), status: .exited(1)))
        #expect(d.machine.mode == .running(serving: 1))
        #expect(spawns(d.advance(60)).isEmpty)
        #expect(spawns(d.send(.hangup)) == [3])
    }

    /// Issue 9, item 5: several children reaped together are handled one event at a time, so a restart
    /// and an exit can never come out of one batch.
    @Test func severalChildrenReapedTogetherNeverExitWithAGenerationRunning() {
        var d = Driver { $0.onExit = .restart }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        _ = d.send(.notified(generation: 2, ready: true))
        // Old generation 1 (draining) and serving generation 2 end in the same instant.
        var all = d.send(.childExited(pid: d.pid(2), status: .signaled(9)))
        all += d.send(.childExited(pid: 100, status: .exited(0)))
        #expect(spawns(all) == [3], "the first crash restarts at once")
        #expect(exits(all).isEmpty)
        #expect(d.machine.generations.map(\.number) == [3])
    }

    /// Issue 9, item 6: once stopping, the guard is off, so no path is put back on a dead listener.
    @Test func terminateTurnsTheGuardOffBeforeAnySignal() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        let a = d.send(.terminate(signal: 15))
        let guardIndex = a.firstIndex(of: .setGuard(.off))
        let firstSignal = a.firstIndex { if case .signal = $0 { true } else { false } }
        #expect(guardIndex != nil && firstSignal != nil && guardIndex! < firstSignal!)
        #expect(signals(a).count == 2)
        _ = d.send(.childExited(pid: d.pid(2), status: .exited(9)))
        let end = d.send(.childExited(pid: 100, status: .exited(7)))
        #expect(exits(end) == [7], "the serving generation's status")
        #expect(!guards(end).contains { if case .follow = $0 { true } else { false } })
    }

    /// Issue 9, item 7: the first restart is immediate; a crash loop backs off, doubling.
    @Test func firstRestartIsImmediateThenBackOff() {
        var d = Driver { $0.onExit = .restart }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        #expect(spawns(d.send(.childExited(pid: d.pid(1), status: .signaled(11)))) == [2])
        _ = d.send(.notified(generation: 2, ready: true))
        d.now += 1_000_000_000
        #expect(spawns(d.send(.childExited(pid: d.pid(2), status: .signaled(11)))).isEmpty)
        #expect(d.machine.mode == .restarting(at: d.now + 500_000_000))
        #expect(spawns(d.advance(0.5)) == [3])
        #expect(spawns(d.send(.childExited(pid: d.pid(3), status: .exited(1)))).isEmpty)
        #expect(d.machine.mode == .restarting(at: d.now + 1_000_000_000))
        // Quiet for longer than the crash-loop window: the next crash restarts at once again.
        _ = d.advance(1)
        _ = d.send(.notified(generation: 4, ready: true))
        _ = d.advance(11)
        #expect(spawns(d.send(.childExited(pid: d.pid(4), status: .exited(1)))) == [5])
    }

    @Test func readyTimeoutRollsBackAndTheDeadlineKills() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        let a = d.advance(5)
        #expect(signals(a).map(\.1) == [d.pid(2)])
        #expect(d.machine.lastReload?.reason == "was not ready within 5s")
        #expect(d.machine.mode == .running(serving: 1))
        let k = d.advance(30)
        #expect(k.contains(.killGroup(pgid: d.pid(2))))
    }

    @Test func firstGenerationPastItsReadyTimeoutKeepsServingAndAHupStillReloads() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.advance(6)
        #expect(d.machine.mode == .running(serving: 1))
        #expect(spawns(d.send(.hangup)) == [2])
        _ = d.send(.notified(generation: 2, ready: true))
        #expect(d.machine.mode == .running(serving: 2))
    }

    @Test func socketProbesAreNeverOverlappingAndSlowDownAfterFiveSeconds() {
        var d = Driver { $0.readiness = .probe; $0.readyTimeout = 60 * nanosecondsPerSecond }
        _ = d.send(.started)
        let first = d.advance(0)
        #expect(first.contains(.probe(generation: 1)))
        // No answer yet: no second probe, until the probe times out.
        #expect(!d.advance(0.5).contains(.probe(generation: 1)))
        #expect(d.advance(0.6).contains(.cancelProbe(generation: 1)))
        d.now += 6_000_000_000
        _ = d.advance(0.3)
        _ = d.send(.probed(generation: 1, accepting: false))
        #expect(d.machine.generation(1)?.probe == .due(at: d.now + 200_000_000))
        _ = d.advance(0.2)
        let ready = d.send(.probed(generation: 1, accepting: true))
        #expect(ready.contains(.stopProbing(generation: 1)))
        #expect(d.machine.mode == .running(serving: 1))
    }

    @Test func autoStopsProbingOnceTheGenerationSpeaksSdNotify() {
        var d = Driver { $0.readiness = .auto(probe: true) }
        _ = d.send(.started)
        _ = d.advance(0)
        let a = d.send(.notified(generation: 1, ready: false))
        #expect(a.contains(.stopProbing(generation: 1)))
        #expect(d.send(.probed(generation: 1, accepting: true)).isEmpty, "a late probe answer is ignored")
        _ = d.send(.notified(generation: 1, ready: true))
        // Learned: the next generation is not probed at all.
        _ = d.send(.hangup)
        #expect(d.machine.generation(2)?.probe == ReloadSupervisor.Probe.none)
    }

    @Test func handoverWaitsForAnEmptyQueueThenSignals() {
        var d = Driver { $0.protection = .guardedRebind(path: "/x") }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        let a = d.send(.notified(generation: 2, ready: true))
        #expect(signals(a).isEmpty)
        #expect(d.advance(0).contains(.checkQueue(generation: 1)))
        #expect(signals(d.send(.queueChecked(generation: 1, queued: 3))).isEmpty)
        #expect(d.advance(0.002).contains(.checkQueue(generation: 1)))
        // Empty once is not enough: a worker may have just accepted and not yet be busy (uWSGI).
        #expect(signals(d.send(.queueChecked(generation: 1, queued: 0))).isEmpty)
        #expect(d.advance(0.05).isEmpty)
        #expect(d.advance(0.05).contains(.checkQueue(generation: 1)))
        #expect(signals(d.send(.queueChecked(generation: 1, queued: 0))).map(\.1) == [100])
    }

    /// Issue 21.0: a slow app's queue takes seconds to empty; the hand-over waits up to the graceful
    /// timeout, saying so once a second, and only then sends the reload signal anyway.
    @Test func handoverWaitsUpToTheGracefulTimeoutSayingSo() {
        var d = Driver { $0.protection = .guardedRebind(path: "/x"); $0.gracefulTimeout = 5 * nanosecondsPerSecond }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        _ = d.send(.notified(generation: 2, ready: true))
        var lines: [String] = []
        for tenth in 1...45 {
            let a = d.advance(0.1)
            #expect(signals(a).isEmpty, "no signal while connections are queued (\(tenth) tenths)")
            if a.contains(.checkQueue(generation: 1)) {
                lines += logs(d.send(.queueChecked(generation: 1, queued: 4)))
            }
        }
        #expect(lines.count >= 4 && lines.count <= 6, "a progress line about once a second: \(lines)")
        #expect(lines.allSatisfy { $0.contains("4 connection(s) still queued") })
        #expect(signals(d.advance(0.6)).map(\.1) == [100])
    }

    @Test func spawnFailureAtStartExitsWithItsCode() {
        var d = Driver()
        let a = d.machine.handle(.started, now: d.now)
        #expect(spawns(a) == [1])
        #expect(exits(d.machine.handle(.spawnFailed(generation: 1, reason: "x: not found", shellCode: 127), now: d.now)) == [127])
        #expect(d.machine.mode == .exited(127))
    }

    @Test func theStatusKeepsTheLastTwentyReloads() {
        var d = Driver()
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        for n in 2...26 {
            _ = d.send(.hangup)
            _ = d.send(.notified(generation: n, ready: true))
            _ = d.send(.childExited(pid: d.pid(n - 1), status: .exited(0)))
        }
        #expect(d.machine.reloads.count == 20)
        #expect(d.machine.reloads.first?.generation == 7)
    }
}

@Suite struct ExplicitReadinessTests {
    /// `--ready http:` is the operator's word: READY=1 alone does not make a failing health check ready.
    @Test func readyOneDoesNotOverrideAnExplicitProbe() {
        do {
            var d = Driver { $0.readiness = .probe }
            _ = d.send(.started)
            _ = d.advance(0)
            _ = d.send(.notified(generation: 1, ready: true))
            #expect(d.machine.generation(1)?.phase != .ready)
            _ = d.send(.probed(generation: 1, accepting: true))
            #expect(d.machine.mode == .running(serving: 1))
        }
    }

    @Test func delayIsTheDelayEvenWhenTheGenerationSpeaks() {
        var d = Driver { $0.readiness = .delay(nanoseconds: 2 * nanosecondsPerSecond) }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        #expect(d.machine.generation(1)?.phase != .ready)
        _ = d.advance(2)
        #expect(d.machine.generation(1)?.phase == .ready)
    }

    /// Rewrite mode: READY=1 is not enough until the generation's own listener accepted.
    @Test func rewriteModeWaitsForTheListenerToo() {
        var d = Driver { $0.readiness = .auto(probe: true); $0.protection = .rewrite(publicPath: "/x") }
        _ = d.send(.started)
        _ = d.advance(0)
        _ = d.send(.notified(generation: 1, ready: true))
        #expect(d.machine.generation(1)?.phase != .ready)
        #expect(d.send(.probed(generation: 1, accepting: true)).contains(.publish(generation: 1)))
        #expect(d.machine.generation(1)?.phase == .publishing)
        _ = d.send(.published(generation: 1, .ok))
        #expect(d.machine.generation(1)?.phase == .ready)
    }
}

/// Issue 21: the public path is a transaction the core knows.
@Suite struct PublishingTests {
    func rewriteDriver() -> Driver {
        var d = Driver { $0.readiness = .notify; $0.protection = .rewrite(publicPath: "/x") }
        _ = d.send(.started)
        _ = readyByItsRule(&d, 1)
        _ = d.send(.published(generation: 1, .ok))
        return d
    }

    /// READY=1 and its listener accepting (rewrite mode asks for both).
    func readyByItsRule(_ d: inout Driver, _ n: Int) -> [Action] {
        _ = d.advance(0)
        return d.send(.notified(generation: n, ready: true)) + d.send(.probed(generation: n, accepting: true))
    }

    /// A publish that failed is a rollback: the caller of `reload --wait` hears "failed", the serving
    /// generation is never signalled, the path is checked, the failed generation is stopped.
    @Test func aFailedPublishIsARollback() {
        var d = rewriteDriver()
        _ = d.send(.reloadRequested(token: 7))
        #expect(readyByItsRule(&d, 2).contains(.publish(generation: 2)))
        #expect(d.machine.mode == .reloading(serving: 1, pending: 2, queued: false), "not ready until published")
        let a = d.send(.published(generation: 2, .failed("a regular file is at /x")))
        #expect(a.contains { if case .reloadFinished(let o) = $0 { !o.succeeded && o.reason.contains("regular file") } else { false } })
        #expect(a.contains(.putBack(generation: 1)))
        #expect(signals(a).map(\.1) == [d.pid(2)])
        #expect(d.machine.mode == .running(serving: 1))
        // Reaped: its private path is removed.
        #expect(d.send(.childExited(pid: d.pid(2), status: .exited(0))).contains(.removePrivate(generation: 2)))
    }

    @Test func aFailedFirstPublishStopsWithTheEnvironmentCode() {
        var d = Driver { $0.readiness = .notify; $0.protection = .rewrite(publicPath: "/x") }
        _ = d.send(.started)
        _ = readyByItsRule(&d, 1)
        _ = d.send(.published(generation: 1, .failed("a directory is at /x")))
        #expect(exits(d.send(.childExited(pid: d.pid(1), status: .signaled(15)))) == [3])
    }

    @Test func aLatePublishAnswerChangesNothing() {
        var d = rewriteDriver()
        let before = (d.machine.mode, d.machine.generations)
        let a = d.send(.published(generation: 1, .failed("late")))
        #expect(d.machine.mode == before.0 && d.machine.generations == before.1)
        #expect(signals(a).isEmpty)
    }

    /// Issue 21 (attack): with `--on-exit restart`, the newly published generation dies while its
    /// predecessor is still handing over its queue (alive, listener open, not yet signalled). The public
    /// path must go back to the predecessor at once, which serves again (it is not signalled), and a
    /// fresh generation is started to take over from it.
    @Test func thePublishedGenerationDyingDuringTheHandoverPutsThePathBack() {
        var d = Driver { $0.readiness = .notify; $0.protection = .rewrite(publicPath: "/x"); $0.onExit = .restart }
        _ = d.send(.started)
        _ = readyByItsRule(&d, 1)
        _ = d.send(.published(generation: 1, .ok))
        _ = d.send(.hangup)
        _ = readyByItsRule(&d, 2)
        _ = d.send(.published(generation: 2, .ok))
        #expect(d.machine.mode == .running(serving: 2))
        #expect(d.advance(0).contains(.checkQueue(generation: 1)))
        _ = d.send(.queueChecked(generation: 1, queued: 5))
        guard case .handingOver = d.machine.generation(1)?.phase else {
            Issue.record("generation 1 is not handing over: \(String(describing: d.machine.generation(1)?.phase))")
            return
        }
        let a = d.send(.childExited(pid: d.pid(2), status: .signaled(9)))
        #expect(a.contains(.putBack(generation: 1)), "\(a)")
        #expect(!signals(a).contains { $0.1 == d.pid(1) }, "the predecessor is not signalled")
        #expect(d.machine.generation(1)?.phase == .ready)
        #expect(d.machine.serving?.number == 1)
        #expect(spawns(a) == [3], "a fresh generation takes over from the one serving again")
        #expect(d.machine.mode == .reloading(serving: 1, pending: 3, queued: false))
        // The hand-over is off: no queue reading, no reload signal for generation 1 later.
        let pid1 = d.pid(1)
        #expect(!d.advance(1).contains { if case .checkQueue(1) = $0 { true } else if case .signal(_, pid1) = $0 { true } else { false } })
        _ = readyByItsRule(&d, 3)
        let took = d.send(.published(generation: 3, .ok))
        #expect(d.machine.mode == .running(serving: 3), "\(took)")
    }

    /// The same, with a reload already under way when the published generation dies: the predecessor
    /// serves again until the new one is ready.
    @Test func thePublishedGenerationDyingDuringAReloadAndTheHandoverPutsThePathBack() {
        var d = Driver { $0.readiness = .notify; $0.protection = .rewrite(publicPath: "/x"); $0.onExit = .exit }
        _ = d.send(.started)
        _ = readyByItsRule(&d, 1)
        _ = d.send(.published(generation: 1, .ok))
        _ = d.send(.hangup)
        _ = readyByItsRule(&d, 2)
        _ = d.send(.published(generation: 2, .ok))
        _ = d.send(.hangup)
        #expect(d.machine.mode == .reloading(serving: 2, pending: 3, queued: false))
        let a = d.send(.childExited(pid: d.pid(2), status: .signaled(9)))
        #expect(a.contains(.putBack(generation: 1)), "\(a)")
        #expect(signals(a).isEmpty)
        #expect(d.machine.mode == .reloading(serving: 1, pending: 3, queued: false))
        #expect(d.machine.generation(1)?.phase == .ready)
    }

    /// Once the predecessor was signalled (draining), its listener is closing: nothing is put back on it.
    @Test func aDrainingPredecessorIsNotPutBack() {
        var d = Driver { $0.readiness = .notify; $0.protection = .rewrite(publicPath: "/x"); $0.onExit = .restart }
        _ = d.send(.started)
        _ = readyByItsRule(&d, 1)
        _ = d.send(.published(generation: 1, .ok))
        _ = d.send(.hangup)
        _ = readyByItsRule(&d, 2)
        _ = d.send(.published(generation: 2, .ok))
        #expect(d.advance(0).contains(.checkQueue(generation: 1)))
        _ = d.send(.queueChecked(generation: 1, queued: 0))
        _ = d.advance(0.1)
        #expect(signals(d.send(.queueChecked(generation: 1, queued: 0))).map(\.1) == [d.pid(1)])
        let a = d.send(.childExited(pid: d.pid(2), status: .signaled(9)))
        #expect(!a.contains(.putBack(generation: 1)))
        #expect(spawns(a) == [3])
        #expect(d.machine.mode == .reloading(serving: nil, pending: 3, queued: false))
    }

    /// Issue 21.7: a reload asked over the control socket is not logged as a SIGHUP.
    @Test func controlReloadsAreNotCalledSIGHUP() {
        var d = rewriteDriver()
        _ = d.send(.hangup)
        let a = d.send(.reloadRequested(token: 3))
        #expect(logs(a).contains { $0.hasPrefix("reload request during a reload") }, "\(logs(a))")
    }

    /// Issue 21.7: TERM while the first generation starts: hupwatch exits with that generation's status.
    @Test func termWhileTheFirstGenerationStartsGivesItsStatus() {
        var d = Driver { $0.readiness = .notify }
        _ = d.send(.started)
        _ = d.send(.terminate(signal: 15))
        #expect(exits(d.send(.childExited(pid: d.pid(1), status: .signaled(15)))) == [143])
    }

    /// Issue 21.7: the serving generation killed during a reload whose new generation then fails.
    @Test func servingKilledDuringAFailingReloadGivesItsStatus() {
        var d = Driver { $0.readiness = .notify }
        _ = d.send(.started)
        _ = d.send(.notified(generation: 1, ready: true))
        _ = d.send(.hangup)
        _ = d.send(.childExited(pid: d.pid(1), status: .signaled(9)))
        #expect(exits(d.send(.childExited(pid: d.pid(2), status: .exited(1)))) == [137])
    }
}
