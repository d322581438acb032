import Testing
@testable import ServicesCore

/// uWSGI's daemon rules (core/daemons.c) as decisions: spawn at start, respawn when dead, throttle a daemon
/// that keeps dying (respawns - elapsed seconds, 1 to max_throttle), stop signals at shutdown, no respawn after.
@Suite struct AttachedDaemonsRules {
    let s: UInt64 = 1_000_000_000

    @Test func respawnsAndThrottlesAsUWSGI() {
        var d = AttachedDaemons([.init(command: "worker")])
        #expect(d.handle(.started, now: 100 * s) == [.spawn(index: 0)])
        _ = d.handle(.spawned(index: 0, pid: 10), now: 100 * s)
        // Died 10 s later: respawned at once.
        var a = d.handle(.exited(pid: 10, status: "exited 1"), now: 110 * s)
        #expect(a.last == .spawn(index: 0))
        _ = d.handle(.spawned(index: 0, pid: 11), now: 110 * s)
        // Died 1 s after its start (2 starts so far): waits 2 - 1 = 1 s.
        a = d.handle(.exited(pid: 11, status: "exited 1"), now: 111 * s)
        #expect(!a.contains(.spawn(index: 0)) && d.nextDeadline == 112 * s)
        #expect(d.handle(.deadline, now: 112 * s) == [.spawn(index: 0)])
        // Many quick deaths: the wait grows with the starts, capped by max_throttle.
        var capped = AttachedDaemons([{ var x = AttachedDaemons.Spec(command: "c"); x.maxThrottleSeconds = 5; return x }()])
        var now = 1000 * s
        _ = capped.handle(.started, now: now)
        for pid in Int32(1)...20 {
            _ = capped.handle(.spawned(index: 0, pid: pid), now: now)
            _ = capped.handle(.exited(pid: pid, status: "exited 1"), now: now)
            if let at = capped.nextDeadline {
                #expect(at - now <= 5 * s)
                now = at
                _ = capped.handle(.deadline, now: now)
            }
        }
    }

    @Test func stopSignalsTheRunningAndRespawnsNothing() {
        var spec = AttachedDaemons.Spec(command: "a")
        spec.stopSignal = 2
        spec.reloadSignal = 1
        var d = AttachedDaemons([spec, .init(command: "b")])
        _ = d.handle(.started, now: 0)
        _ = d.handle(.spawned(index: 0, pid: 5), now: 0)
        _ = d.handle(.spawned(index: 1, pid: 6), now: 0)
        #expect(d.handle(.reload, now: s) == [.signalGroup(pid: 5, signal: 1)])
        #expect(d.handle(.stop, now: 2 * s) == [.signalGroup(pid: 5, signal: 2), .signalGroup(pid: 6, signal: 15)])
        #expect(!d.handle(.exited(pid: 5, status: "exited 0"), now: 3 * s).contains(.spawn(index: 0)))
        #expect(d.running.map(\.pid) == [6])
    }

    @Test func aControlDaemonDyingStopsTheServer() {
        var spec = AttachedDaemons.Spec(command: "c")
        spec.control = true
        var d = AttachedDaemons([spec])
        _ = d.handle(.started, now: 0)
        _ = d.handle(.spawned(index: 0, pid: 9), now: 0)
        guard case .stopServer = d.handle(.exited(pid: 9, status: "exited 0"), now: s).first else {
            Issue.record("no stop")
            return
        }
    }
}
