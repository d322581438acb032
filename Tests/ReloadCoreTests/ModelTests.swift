import Testing
@testable import ReloadCore

/// Model-based tests of `ReloadSupervisor`: seeded random sequences of outside events (HUPs, any process
/// exiting, several reaped in a row, readiness, probe answers, deadlines, TERM/INT, failing spawns) run
/// against a model of the processes it starts. Invariants are checked after every step; then the world
/// settles (every process behaves) and the end state is checked. A failure prints its seed and the
/// shortest sequence of steps that still fails.

/// SplitMix64: small, fast and the same on every machine, so a seed always replays the same sequence.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One outside happening. Processes are named by position among the live ones (modulo their count), so
/// any subsequence of steps still replays: that is what lets a failure shrink.
enum Step: Equatable, CustomStringConvertible {
    case hangup
    case terminate(Int32)
    /// These live processes end, reaped one after another with no other event between them.
    case exit([Int], ProcessEnd)
    case notify(Int, ready: Bool)
    case answerProbe(Int, accepting: Bool)
    case answerQueue(Int, queued: Int)
    case advance(milliseconds: UInt64)
    case nextSpawnFails
    case forward(Int32)
    /// `hupwatch reload` over the control socket.
    case request

    var description: String {
        switch self {
        case .hangup: return "HUP"
        case .terminate(let s): return "TERM(\(s))"
        case .exit(let ks, let e): return "exit\(ks) \(e)"
        case .notify(let k, let r): return "notify(\(k), ready: \(r))"
        case .answerProbe(let k, let a): return "probe(\(k)) -> \(a)"
        case .answerQueue(let k, let q): return "queue(\(k)) = \(q)"
        case .advance(let ms): return "+\(ms)ms"
        case .nextSpawnFails: return "next spawn fails"
        case .forward(let s): return "forward(\(s))"
        case .request: return "reload request"
        }
    }

    static func random(_ rng: inout SeededRandom) -> Step {
        let k = Int.random(in: 0..<4, using: &rng)
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<14: return .hangup
        case 14..<17: return .terminate([15, 2, 3].randomElement(using: &rng)!)
        case 17..<27:
            let end: ProcessEnd = Bool.random(using: &rng) ? .exited(Int32.random(in: 0...3, using: &rng)) : .signaled([9, 15, 11].randomElement(using: &rng)!)
            let count = Int.random(in: 1...3, using: &rng)
            return .exit((0..<count).map { _ in Int.random(in: 0..<4, using: &rng) }, end)
        case 27..<42: return .notify(k, ready: Int.random(in: 0..<5, using: &rng) > 0)
        case 42..<55: return .answerProbe(k, accepting: Bool.random(using: &rng))
        case 55..<62: return .answerQueue(k, queued: Int.random(in: 0...2, using: &rng))
        case 62..<94: return .advance(milliseconds: [1, 5, 20, 300, 1_100, 2_500, 31_000].randomElement(using: &rng)!)
        case 94..<97: return .nextSpawnFails
        case 97..<99: return .request
        default: return .forward(10)
        }
    }
}

struct ModelFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The processes hupwatch started, as the kernel would see them.
struct World {
    struct Process {
        let pid: Int32
        let generation: Int
        var signalled = false
        var killed = false
    }

    var machine: ReloadSupervisor
    var now: Instant = 1_000_000_000
    var nextPid: Int32 = 100
    var live: [Process] = []
    var reaped: Set<Int32> = []
    var results: [ReloadSupervisor.Event] = []
    var probesInFlight: Set<Int> = []
    var queueChecks: Set<Int> = []
    var failNextSpawn = false
    var everSpawned = false
    var exited: Int32?
    /// A HUP arrived while a generation was starting: a newer generation is owed.
    var owedReload = false
    var expectedCode: Int32 = 0
    var servingAtStop: Int?
    var stopping = false
    var trace: [String] = []
    /// Reload ids callers were told to wait for, and not yet told the outcome of.
    var awaited: Set<Int> = []
    var finished: Set<Int> = []
    var nextToken = 1

    init(config: ReloadSupervisor.Config) {
        machine = ReloadSupervisor(config: config)
    }

    func liveProcess(_ k: Int) -> Process? { live.isEmpty ? nil : live[k % live.count] }

    mutating func fail(_ why: String) throws -> Never {
        throw ModelFailure(message: why + "\n  last events:\n    " + trace.suffix(12).joined(separator: "\n    "))
    }

    /// Feeds one event, carries out its actions, then every result event, checking as it goes.
    mutating func feed(_ event: ReloadSupervisor.Event) throws {
        results.append(event)
        while !results.isEmpty {
            let e = results.removeFirst()
            let modeBefore = machine.mode
            let servingBefore = machine.servingNumber
            if case .hangup = e, case .reloading(_, _, _) = modeBefore { owedReload = true }
            if case .terminate = e, !stopping {
                stopping = true
                expectedCode = 0
                servingAtStop = servingBefore
                owedReload = false
            }
            // The exit code hupwatch owes: the serving generation's status once stopping, 0 if none.
            if case .childExited(_, let status) = e, let g = machine.generations.first(where: { if case .childExited(let pid, _) = e { $0.pid == pid } else { false } }) {
                if stopping {
                    if servingAtStop == g.number { expectedCode = status.shellCode; servingAtStop = nil }
                } else if machine.config.onExit == .exit,
                          modeBefore == .running(serving: g.number) || modeBefore == .reloading(serving: nil, pending: g.number, queued: false) {
                    stopping = true
                    expectedCode = status.shellCode
                    owedReload = false
                }
            }
            if case .spawnFailed(let n, _, let code) = e, !stopping,
               modeBefore == .reloading(serving: nil, pending: n, queued: false),
               machine.config.onExit == .exit || !everSpawned {
                stopping = true
                expectedCode = code
            }
            let actions = machine.handle(e, now: now)
            trace.append("\(e) -> \(actions.filter { if case .log = $0 { false } else if case .debug = $0 { false } else { true } })")
            for a in actions { try perform(a, after: e) }
        }
        try checkTable()
    }

    mutating func perform(_ a: ReloadSupervisor.Action, after e: ReloadSupervisor.Event) throws {
        if exited != nil {
            if case .debug = a { return }
            try fail("action \(a) after hupwatch exited")
        }
        switch a {
        case .spawn(let n):
            owedReload = false
            if failNextSpawn {
                failNextSpawn = false
                results.append(.spawnFailed(generation: n, reason: "model", shellCode: 126))
            } else {
                let pid = nextPid
                nextPid += 1
                everSpawned = true
                live.append(Process(pid: pid, generation: n))
                results.append(.spawned(generation: n, pid: pid))
            }
        case .probe(let n):
            if probesInFlight.contains(n) { try fail("a second probe of generation \(n) while one is in flight") }
            probesInFlight.insert(n)
        case .cancelProbe(let n), .stopProbing(let n):
            probesInFlight.remove(n)
        case .checkQueue(let n):
            queueChecks.insert(n)
        case .forget(let n):
            probesInFlight.remove(n)
            queueChecks.remove(n)
        case .signal(let sig, let pid):
            if reaped.contains(pid) { try fail("signal \(sig) to pid \(pid), which was already reaped") }
            guard let i = live.firstIndex(where: { $0.pid == pid }) else { try fail("signal to pid \(pid), never spawned") }
            live[i].signalled = true
        case .killGroup(let pgid):
            // The group may outlive its leader; only live members matter.
            if let i = live.firstIndex(where: { $0.pid == pgid }) { live[i].killed = true }
        case .exit(let code):
            if !live.isEmpty { try fail("exit(\(code)) while pids \(live.map(\.pid)) it spawned are alive") }
            if code != expectedCode { try fail("exit(\(code)), expected \(expectedCode)") }
            exited = code
        case .reloadAccepted(_, let id):
            if finished.contains(id) { try fail("a caller was told to wait for reload \(id), which is already over") }
            awaited.insert(id)
        case .reloadFinished(let outcome):
            if finished.contains(outcome.id) { try fail("reload \(outcome.id) finished twice") }
            finished.insert(outcome.id)
            awaited.remove(outcome.id)
        case .reloadRefused:
            if !stopping { try fail("a reload request was refused while not stopping") }
        case .setGuard, .log, .debug, .notifySupervisor, .statusChanged, .closeNotify:
            break
        }
    }

    /// The supervisor's table and the world agree; the mode names only generations that exist.
    func checkTable() throws {
        var me = self
        if exited != nil { return }
        let tablePids = Set(machine.generations.map(\.pid))
        let livePids = Set(live.map(\.pid))
        if tablePids != livePids { try me.fail("table pids \(tablePids.sorted()) but live pids \(livePids.sorted())") }
        let numbers = Set(machine.generations.map(\.number))
        switch machine.mode {
        case .running(let s):
            if !numbers.contains(s) { try me.fail("running generation \(s), not in the table") }
        case .reloading(let s, let p, _):
            if let s, !numbers.contains(s) { try me.fail("serving generation \(s) not in the table") }
            if !numbers.contains(p) { try me.fail("pending generation \(p) not in the table") }
        case .stopping(_, let s):
            if let s, !numbers.contains(s) { try me.fail("serving generation \(s) not in the table while stopping") }
        case .idle: try me.fail("idle after start")
        case .restarting, .exited: break
        }
        // Old generations may pile up while they drain (each within --graceful-timeout), but only one serves
        // and at most one more is starting.
        let ready = machine.generations.filter { $0.phase == .ready }.count
        let starting = machine.generations.filter { if case .starting = $0.phase { true } else { false } }.count
        if ready > 1 || starting > 2 { try me.fail("\(ready) ready and \(starting) starting generations at once") }
    }

    mutating func reap(_ pid: Int32, _ status: ProcessEnd) throws {
        live.removeAll { $0.pid == pid }
        reaped.insert(pid)
        try feed(.childExited(pid: pid, status: status))
    }

    mutating func step(_ s: Step) throws {
        guard exited == nil else { return }
        trace.append("# \(s)")
        switch s {
        case .hangup: try feed(.hangup)
        case .terminate(let sig): try feed(.terminate(signal: sig))
        case .forward(let sig): try feed(.forward(signal: sig))
        case .exit(let ks, let status):
            // Pick the pids first: they all ended before hupwatch looked, then are reaped one by one.
            var pids: [Int32] = []
            for k in ks { if let p = liveProcess(k), !pids.contains(p.pid) { pids.append(p.pid) } }
            for pid in pids where exited == nil { try reap(pid, status) }
        case .notify(let k, let ready):
            if let p = liveProcess(k) { try feed(.notified(generation: p.generation, ready: ready)) }
        case .answerProbe(let k, let accepting):
            if let n = probesInFlight.sorted().dropFirst(k % max(1, probesInFlight.count)).first {
                probesInFlight.remove(n)
                try feed(.probed(generation: n, accepting: accepting))
            }
        case .answerQueue(let k, let queued):
            if let n = queueChecks.sorted().dropFirst(k % max(1, queueChecks.count)).first {
                queueChecks.remove(n)
                try feed(.queueChecked(generation: n, queued: queued))
            }
        case .advance(let ms):
            let target = now + ms * 1_000_000
            // Every deadline on the way is delivered at its instant, as the timerfd would.
            while exited == nil, let d = machine.nextDeadline, d <= target {
                now = max(now, d)
                try feed(.deadlinePassed)
            }
            now = target
        case .nextSpawnFails:
            failNextSpawn = true
        case .request:
            if case .reloading = machine.mode { owedReload = true }
            nextToken += 1
            try feed(.reloadRequested(token: nextToken))
        }
    }

    /// Everything behaves from now on: signalled processes exit, starting ones become ready, probes and
    /// queue checks are answered, time moves to each deadline. Then the end state is checked.
    mutating func settle() throws {
        failNextSpawn = false
        for _ in 0..<400 {
            guard exited == nil else { break }
            if let p = live.first(where: { $0.killed }) { try reap(p.pid, .signaled(9)); continue }
            if let p = live.first(where: { $0.signalled }) { try reap(p.pid, .exited(0)); continue }
            if let n = probesInFlight.min() {
                probesInFlight.remove(n)
                try feed(.probed(generation: n, accepting: true))
                continue
            }
            if let n = queueChecks.min() {
                queueChecks.remove(n)
                try feed(.queueChecked(generation: n, queued: 0))
                continue
            }
            if let d = machine.nextDeadline {
                now = max(now, d)
                try feed(.deadlinePassed)
                continue
            }
            // Nothing else would make it ready: a well-behaved process speaks sd_notify.
            if let g = machine.generations.first(where: { if case .starting = $0.phase { true } else { false } }) {
                try feed(.notified(generation: g.number, ready: true))
                continue
            }
            break
        }
        if exited != nil {
            if !live.isEmpty { try fail("exited with live processes") }
            return
        }
        if owedReload { try fail("a HUP received while a generation was starting was lost") }
        if !awaited.isEmpty { try fail("callers still wait for reloads \(awaited.sorted()) that never ended") }
        guard case .running(let s) = machine.mode else { try fail("settled in mode \(machine.mode), not running one generation") }
        guard machine.generations.count == 1, let g = machine.generations.first, g.number == s, g.phase == .ready else {
            try fail("settled with generations \(machine.generations.map { "\($0.number):\($0.phase)" }), serving \(s)")
        }
    }
}

/// Configurations the model runs under: every readiness mode, both --on-exit policies, with and
/// without the hand-over wait.
func modelConfig(_ variant: Int) -> ReloadSupervisor.Config {
    var c = ReloadSupervisor.Config(gracefulTimeout: 30 * nanosecondsPerSecond, readyTimeout: 2 * nanosecondsPerSecond,
                                    reloadSignal: 15, onExit: variant % 2 == 0 ? .exit : .restart)
    switch (variant / 2) % 5 {
    case 0: c.readiness = .auto; c.canProbe = true
    case 1: c.readiness = .auto; c.canProbe = false
    case 2: c.readiness = .notify
    case 3: c.readiness = .socket(path: "/x")
    default: c.readiness = .delay(nanoseconds: 300_000_000)
    }
    c.canProbe = c.canProbe || c.readiness == .socket(path: "/x")
    if variant % 3 == 0 { c.handoverNanoseconds = nanosecondsPerSecond }
    if variant % 7 == 3 { c.listenerMustAccept = true; c.canProbe = true }
    return c
}

/// Runs one sequence; nil when every invariant held.
func runModel(config: ReloadSupervisor.Config, steps: [Step]) -> String? {
    var w = World(config: config)
    do {
        try w.feed(.started)
        for s in steps { try w.step(s) }
        try w.settle()
        return nil
    } catch {
        return "\(error)"
    }
}

/// Removes steps one at a time while the sequence still fails, until none can go.
func shrink(config: ReloadSupervisor.Config, steps: [Step]) -> [Step] {
    var best = steps
    var changed = true
    while changed {
        changed = false
        var i = 0
        while i < best.count {
            var candidate = best
            candidate.remove(at: i)
            if runModel(config: config, steps: candidate) != nil {
                best = candidate
                changed = true
            } else {
                i += 1
            }
        }
    }
    return best
}

@Suite struct ReloadSupervisorModelTests {
    /// 100,000 sequences per run, in 4 parallel shards; each shard's seeds differ from run to run's
    /// base only through the shard number, so a failure's printed seed replays it exactly.
    @Test(arguments: 0..<4)
    func randomSequencesKeepEveryInvariant(shard: Int) {
        let perShard = 25_000
        for i in 0..<perShard {
            let seed = UInt64(shard * perShard + i) &* 0x2545_F491_4F6C_DD1D &+ 17
            var rng = SeededRandom(seed: seed)
            let config = modelConfig(Int.random(in: 0..<70, using: &rng))
            let steps = (0..<Int.random(in: 4...28, using: &rng)).map { _ in Step.random(&rng) }
            if let failure = runModel(config: config, steps: steps) {
                let shortest = shrink(config: config, steps: steps)
                Issue.record("""
                    seed \(seed) failed: \(failure)
                    shortest sequence (\(shortest.count) steps): \(shortest.map(\.description).joined(separator: ", "))
                    it fails with: \(runModel(config: config, steps: shortest) ?? "?")
                    """)
                return
            }
        }
    }
}
