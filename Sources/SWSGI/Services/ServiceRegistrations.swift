import Posix
import ServicesCore

/// What the app registered with the services: signal handlers, the timers it asked for before the shared
/// table existed, mule functions and loops, and a host's fork hooks. Made before the fork (the app's import
/// in the master), copied into each worker and mule with the fork; a worker may add more (`--lazy-apps`).
/// A plain value: whoever holds it guards it (`RegistrationBook`).
struct ServiceRegistrations {
    struct Signal {
        let target: SignalTarget
        let unique: Bool
        let handler: (SignalFire) -> Void
    }
    var signals: [Int: Signal] = [:]
    /// Timers asked for before the shared table exists; the set-up copies them there.
    var timers: [(signal: Int, kind: TimerScheduler.Kind)] = []
    var muleFunctions: [String: ([UInt8]) -> Void] = [:]
    var muleLoops: [String: () -> Void] = [:]
    var muleMessageHandler: (([UInt8]) -> Void)? = nil
    /// For a host that runs `--mule=FILE` itself (the Python binding): called in the mule when no Swift
    /// loop is registered for FILE.
    var muleFileRunner: ((String) -> Void)? = nil
    /// A host with process-wide state (Python) told about each mule fork, as the master tells it about workers'.
    var muleForkHooks: (prepare: () -> Void, parent: () -> Void, child: () -> Void)? = nil
    /// Run in each worker and mule right after the fork (uwsgidecorators' `@postfork`).
    var postForkHooks: [() -> Void] = []

    /// The checks every registration passes, whenever it is made.
    static func check(signal: Int, target: SignalTarget, unique: Bool) throws {
        guard (0...255).contains(signal) else { throw ServicesError("signal \(signal): signals are 0...255") }
        if unique && (target == .allWorkers || target == .allMules) {
            throw ServicesError("signal \(signal): unique needs one target process at a time (not '\(target)')")
        }
    }

    /// A free signal number for an anonymous timer, counting down from 255 like uwsgidecorators.
    func freeSignal() throws -> Int {
        for s in stride(from: 255, through: 0, by: -1) where signals[s] == nil { return s }
        throw ServicesError("all 256 signals are registered")
    }
}

/// A process's registrations behind a mutex: the `uwsgi` module registers from request threads (README
/// "threads") while the worker's loop looks handlers up to run them. The lock is held for the lookup or
/// the change only, never while a handler runs (a handler may register another).
final class RegistrationBook: @unchecked Sendable {
    private let monitor = Monitor()
    private var registrations: ServiceRegistrations

    init(_ registrations: ServiceRegistrations) { self.registrations = registrations }

    /// A copy for a child to own, read without the lock: right after a fork only this thread exists,
    /// and a lock another thread of the parent held at the fork would never be released.
    func snapshotAfterFork() -> ServiceRegistrations { registrations }

    /// A copy, for the set-up.
    var snapshot: ServiceRegistrations { monitor.withLock { registrations } }

    func read<T>(_ body: (ServiceRegistrations) throws -> T) rethrows -> T {
        try monitor.withLock { try body(registrations) }
    }

    func change<T>(_ body: (inout ServiceRegistrations) throws -> T) rethrows -> T {
        try monitor.withLock { try body(&registrations) }
    }
}

extension RegistrationBook {
    /// Registers `signal` (nil: a free one, chosen under the same lock, so two threads never get the same),
    /// after `publish` put it where other processes see it (nil before the set-up). Returns the signal.
    func register(signal: Int?, target: SignalTarget, unique: Bool, handler: @escaping (SignalFire) -> Void,
                  publish: ((Int) throws -> Void)?) throws -> Int {
        try change { r in
            let s = try signal ?? r.freeSignal()
            try ServiceRegistrations.check(signal: s, target: target, unique: unique)
            try publish?(s)
            r.signals[s] = .init(target: target, unique: unique, handler: handler)
            return s
        }
    }

    func requireHandler(_ signal: Int) throws {
        guard read({ $0.signals[signal] != nil }) else { throw ServicesError("signal \(signal) has no handler: register it first") }
    }
}
