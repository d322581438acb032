/// uWSGI's attached daemons (core/daemons.c, `attach-daemon`, `attach-daemon2`): commands the master starts,
/// respawns when they die and stops at shutdown. Pure: events and the clock in, decisions out.
///
/// uWSGI's respawn throttle: a daemon respawned within 3 s of its last start waits `respawns - elapsed`
/// seconds first (at least 1, at most `maxThrottleSeconds`, default 300); `respawns` counts every start.
public struct AttachedDaemons: Sendable {
    public struct Spec: Equatable, Sendable {
        public var command: String
        /// Sent to the daemon's process group at shutdown (uWSGI's stopsignal, default SIGTERM).
        public var stopSignal: Int32 = 15
        /// Sent to its group when the workers are reloaded (uWSGI's reloadsignal); nil: nothing.
        public var reloadSignal: Int32? = nil
        /// The longest respawn wait, seconds (uWSGI's max_throttle, default 300).
        public var maxThrottleSeconds: Int = 300
        /// uWSGI's control flag (`attach-control-daemon`): the server stops when the daemon dies.
        public var control = false
        /// Its working directory (uWSGI's chdir).
        public var chdir: String? = nil
        public init(command: String, control: Bool = false) {
            self.command = command
            self.control = control
        }
    }

    public enum Phase: Equatable, Sendable {
        case notStarted
        case running(pid: Int32)
        /// Throttled: respawned at this monotonic instant.
        case waiting(until: UInt64)
        case stopped
    }

    public enum Event: Equatable, Sendable {
        case started
        case spawned(index: Int, pid: Int32)
        case spawnFailed(index: Int, reason: String)
        case exited(pid: Int32, status: String)
        case deadline
        case reload
        case stop
    }

    public enum Action: Equatable, Sendable {
        case spawn(index: Int)
        case signalGroup(pid: Int32, signal: Int32)
        case log(String)
        /// A control daemon died: the server stops.
        case stopServer(String)
    }

    public let specs: [Spec]
    public private(set) var phases: [Phase]
    private var respawns: [Int]
    private var lastSpawn: [UInt64?]
    private var stopping = false
    static let second: UInt64 = 1_000_000_000

    public init(_ specs: [Spec]) {
        self.specs = specs
        phases = Array(repeating: .notStarted, count: specs.count)
        respawns = Array(repeating: 0, count: specs.count)
        lastSpawn = Array(repeating: nil, count: specs.count)
    }

    public var isEmpty: Bool { specs.isEmpty }

    /// The earliest throttled respawn.
    public var nextDeadline: UInt64? {
        phases.compactMap { if case .waiting(let t) = $0 { t } else { nil } }.min()
    }

    /// The daemons running now (pid, stop signal).
    public var running: [(pid: Int32, stopSignal: Int32)] {
        phases.indices.compactMap { i in if case .running(let p) = phases[i] { (p, specs[i].stopSignal) } else { nil } }
    }

    public func owns(_ pid: Int32) -> Bool { phases.contains(.running(pid: pid)) }

    public mutating func handle(_ event: Event, now: UInt64) -> [Action] {
        switch event {
        case .started:
            return specs.indices.flatMap { startOrThrottle($0, now: now) }
        case .spawned(let i, let pid):
            guard specs.indices.contains(i) else { return [] }
            phases[i] = .running(pid: pid)
            respawns[i] += 1
            lastSpawn[i] = now
            if stopping { return [.signalGroup(pid: pid, signal: specs[i].stopSignal)] }
            return [.log("attach-daemon: started \"\(specs[i].command)\" (pid \(pid))")]
        case .spawnFailed(let i, let reason):
            guard specs.indices.contains(i) else { return [] }
            respawns[i] += 1
            lastSpawn[i] = now
            phases[i] = .stopped
            return [.log("attach-daemon: cannot start \"\(specs[i].command)\": \(reason)")] + (stopping ? [] : startOrThrottle(i, now: now))
        case .exited(let pid, let status):
            guard let i = phases.firstIndex(of: .running(pid: pid)) else { return [] }
            phases[i] = .stopped
            if stopping { return [.log("attach-daemon: \"\(specs[i].command)\" (pid \(pid)) stopped: \(status)")] }
            if specs[i].control {
                return [.stopServer("attach-control-daemon: \"\(specs[i].command)\" (pid \(pid)) died (\(status)): stopping")]
            }
            return [.log("attach-daemon: \"\(specs[i].command)\" (pid \(pid)) died (\(status)): respawning")] + startOrThrottle(i, now: now)
        case .deadline:
            guard !stopping else { return [] }
            return phases.indices.flatMap { i -> [Action] in
                if case .waiting(let t) = phases[i], t <= now { return [.spawn(index: i)] }
                return []
            }
        case .reload:
            return phases.indices.compactMap { i in
                guard case .running(let pid) = phases[i], let sig = specs[i].reloadSignal else { return nil }
                return .signalGroup(pid: pid, signal: sig)
            }
        case .stop:
            stopping = true
            var out: [Action] = []
            for i in phases.indices {
                switch phases[i] {
                case .running(let pid): out.append(.signalGroup(pid: pid, signal: specs[i].stopSignal))
                case .waiting, .notStarted: phases[i] = .stopped
                case .stopped: break
                }
            }
            return out
        }
    }

    /// Spawn now, or after uWSGI's throttle when the last start was under 3 s ago.
    private mutating func startOrThrottle(_ i: Int, now: UInt64) -> [Action] {
        guard let last = lastSpawn[i], now &- last <= 3 * Self.second else { return [.spawn(index: i)] }
        let elapsed = Int((now - last) / Self.second)
        let seconds = min(max(1, respawns[i] - elapsed), max(1, specs[i].maxThrottleSeconds))
        phases[i] = .waiting(until: now + UInt64(seconds) * Self.second)
        return [.log("attach-daemon: throttling \"\(specs[i].command)\" for \(seconds) s")]
    }
}
