import ServicesCore
import Testing

@Suite struct MuleSupervisorTests {
    let s: UInt64 = 1_000_000_000

    @Test func startsEveryMuleAndRespawnsAnOldOneAtOnce() {
        var m = MuleSupervisor(count: 2)
        #expect(m.start() == [.fork(id: 1), .fork(id: 2)])
        _ = m.forked(id: 1, pid: 100, now: 0)
        _ = m.forked(id: 2, pid: 200, now: 0)
        let a = m.exited(pid: 100, status: "killed by SIGKILL", now: 5 * s)
        #expect(a == [.log("mule 1 (pid 100) killed by SIGKILL; respawning"), .fork(id: 1)])
        #expect(m.mules[0].respawns == 1)
        #expect(m.nextDeadline == nil)
    }

    @Test func aCrashingMuleWaitsASecond() {
        var m = MuleSupervisor(count: 1)
        _ = m.forked(id: 1, pid: 100, now: 10 * s)
        #expect(m.exited(pid: 100, status: "exit status 1", now: 10 * s + 1000) == [.log("mule 1 (pid 100) exit status 1; respawning in 1 s")])
        #expect(m.nextDeadline == 11 * s + 1000)
        #expect(m.deadlinePassed(now: 11 * s).isEmpty)
        #expect(m.deadlinePassed(now: 11 * s + 1000) == [.fork(id: 1)])
        #expect(m.nextDeadline == nil)
    }

    @Test func aReloadIsNotACrash() {
        var m = MuleSupervisor(count: 2)
        _ = m.forked(id: 1, pid: 100, now: 0)
        _ = m.forked(id: 2, pid: 200, now: 0)
        #expect(m.reload() == [.log("reloading mule 1 (pid 100)"), .signal(15, pid: 100), .log("reloading mule 2 (pid 200)"), .signal(15, pid: 200)])
        // Even a mule only just started comes back at once after a reload.
        #expect(m.exited(pid: 100, status: "killed by SIGTERM", now: 1000)?.last == .fork(id: 1))
        _ = m.forked(id: 1, pid: 101, now: 2000)
        #expect(m.mules[0].reloading == false)
    }

    @Test func workersAreNotMules() {
        var m = MuleSupervisor(count: 1)
        _ = m.forked(id: 1, pid: 100, now: 0)
        #expect(m.exited(pid: 555, status: "exit status 0", now: 0) == nil)
    }

    @Test func stoppingKillsAndNeverRespawns() {
        var m = MuleSupervisor(count: 2)
        _ = m.forked(id: 1, pid: 100, now: 0)
        _ = m.forkFailed(id: 2, reason: "Resource temporarily unavailable", now: 0)
        #expect(m.nextDeadline == s)
        #expect(m.stop() == [.signal(9, pid: 100)])
        #expect(m.exited(pid: 100, status: "killed by SIGKILL", now: 10) == [])
        #expect(m.deadlinePassed(now: 10 * s).isEmpty)
        #expect(m.nextDeadline == nil)
    }
}
