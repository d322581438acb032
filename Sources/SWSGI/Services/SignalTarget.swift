/// Where a signal (a timer or cron job) runs, in uWSGI's terms.
public enum SignalTarget: Equatable, Sendable, CustomStringConvertible {
    /// The first worker free to take it (uWSGI's `worker`).
    case anyWorker
    /// Worker N, 1-based (`workerN`).
    case worker(Int)
    /// Every live worker (`workers`).
    case allWorkers
    /// The first mule free to take it (`mule`).
    case anyMule
    /// Mule N, 1-based (`muleN`).
    case mule(Int)
    /// Every mule (`mules`).
    case allMules

    /// uWSGI's spelling: `worker`, `worker2`, `workers`, `mule`, `mule1`, `mules`; nil if unknown.
    public init?(uwsgiName s: String) {
        switch s {
        case "worker", "worker0", "": self = .anyWorker
        case "workers", "active-workers": self = .allWorkers
        case "mule", "mule0": self = .anyMule
        case "mules": self = .allMules
        default:
            if s.hasPrefix("worker"), let n = Int(s.dropFirst(6)), n > 0 { self = .worker(n) }
            else if s.hasPrefix("mule"), let n = Int(s.dropFirst(4)), n > 0 { self = .mule(n) }
            else { return nil }
        }
    }

    public var description: String {
        switch self {
        case .anyWorker: "worker"
        case .worker(let n): "worker\(n)"
        case .allWorkers: "workers"
        case .anyMule: "mule"
        case .mule(let n): "mule\(n)"
        case .allMules: "mules"
        }
    }
}

/// What a signal handler is told when it runs.
public struct SignalFire: Sendable {
    /// The signal number, 0-255 (uWSGI's signal framework).
    public let signal: Int
    /// When the master meant it to run (CLOCK_MONOTONIC ns).
    public let scheduledAt: UInt64
}

/// Misuse of the services API or configuration: always a clear message.
public struct ServicesError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ d: String) { description = d }
}
