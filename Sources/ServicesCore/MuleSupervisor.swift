/// The mules' lifecycle as a pure state machine: which to fork, when to respawn one that died, what a
/// reload signals. The master carries out the actions (fork, kill, log); no syscalls here.
///
/// A mule that dies less than `crashWindowNanoseconds` after it started is respawned after
/// `respawnDelayNanoseconds` (a crashing mule cannot spin the master); an older one, or one stopped by a
/// reload, at once.
public struct MuleSupervisor: Sendable {
    public enum Action: Equatable, Sendable {
        case fork(id: Int)
        case signal(Int32, pid: Int32)
        case log(String)
    }

    public struct Mule: Equatable, Sendable {
        public let id: Int
        public var pid: Int32? = nil
        public var startedAt: UInt64 = 0
        public var respawns = 0
        /// Set by a reload: its exit is expected.
        public var reloading = false
        public var respawnAt: UInt64? = nil
    }

    public private(set) var mules: [Mule]
    public var crashWindowNanoseconds: UInt64 = 1_000_000_000
    public var respawnDelayNanoseconds: UInt64 = 1_000_000_000
    /// Once stopping, nothing is respawned.
    public private(set) var stopping = false

    public init(count: Int) { mules = (0..<count).map { Mule(id: $0 + 1) } }

    public var nextDeadline: UInt64? { mules.compactMap(\.respawnAt).min() }

    public func mule(pid: Int32) -> Mule? { mules.first { $0.pid == pid } }

    public mutating func start() -> [Action] { mules.map { .fork(id: $0.id) } }

    public mutating func forked(id: Int, pid: Int32, now: UInt64) -> [Action] {
        guard let i = index(id) else { return [] }
        mules[i].pid = pid
        mules[i].startedAt = now
        mules[i].reloading = false
        mules[i].respawnAt = nil
        return [.log("mule \(id) started (pid \(pid))")]
    }

    public mutating func forkFailed(id: Int, reason: String, now: UInt64) -> [Action] {
        guard let i = index(id), !stopping else { return [] }
        mules[i].respawnAt = now + respawnDelayNanoseconds
        return [.log("fork(mule \(id)): \(reason); retrying in 1 s")]
    }

    /// nil when `pid` is not a mule (a worker: the caller's business).
    public mutating func exited(pid: Int32, status: String, now: UInt64) -> [Action]? {
        guard let i = mules.firstIndex(where: { $0.pid == pid }) else { return nil }
        let m = mules[i]
        mules[i].pid = nil
        if stopping { return [] }
        mules[i].respawns += 1
        let young = !m.reloading && now - min(m.startedAt, now) < crashWindowNanoseconds
        if young {
            mules[i].respawnAt = now + respawnDelayNanoseconds
            return [.log("mule \(m.id) (pid \(pid)) \(status); respawning in 1 s")]
        }
        return [.log("mule \(m.id) (pid \(pid)) \(status); respawning"), .fork(id: m.id)]
    }

    /// Respawns whose delay is over.
    public mutating func deadlinePassed(now: UInt64) -> [Action] {
        var out: [Action] = []
        for i in mules.indices where (mules[i].respawnAt ?? .max) <= now {
            mules[i].respawnAt = nil
            if !stopping { out.append(.fork(id: mules[i].id)) }
        }
        return out
    }

    /// A reload (SIGHUP): each live mule gets SIGTERM and is respawned at once when it exits.
    public mutating func reload() -> [Action] {
        var out: [Action] = []
        for i in mules.indices {
            guard let pid = mules[i].pid else { continue }
            mules[i].reloading = true
            out += [.log("reloading mule \(mules[i].id) (pid \(pid))"), .signal(15, pid: pid)]
        }
        return out
    }

    /// The master is exiting: every live mule is killed (they serve no requests) and none respawned.
    public mutating func stop() -> [Action] {
        stopping = true
        for i in mules.indices { mules[i].respawnAt = nil }
        return mules.compactMap { m in m.pid.map { .signal(9, pid: $0) } }
    }

    private func index(_ id: Int) -> Int? { mules.firstIndex { $0.id == id } }
}
