import ServicesCore

/// Timers and cron jobs, kept by the master with no periodic tick (its timerfd wakes exactly when one is
/// due) and run in a worker or mule between requests. Register them before `serve` (at start-up), or
/// in `ServerProcess.afterFork` (each worker adds the same timer; it runs once):
///
/// ```swift
/// try Timers.every(seconds: 30) { _ in try? Cache("stats")?.update("beat", []) }
/// try Timers.every(milliseconds: 250, on: .mule(1), unique: true) { fire in refreshIndex() }
/// try Timers.cron(minute: 0, hour: 3, on: .anyWorker, unique: true) { _ in vacuum() }   // 03:00 daily
/// serve(myApp)
/// ```
/// `unique`: a run never starts while the previous run of the same job is still going (it is skipped).
public enum Timers {
    /// Every `seconds`, at start + k x interval (no drift). Returns the signal number it uses.
    @discardableResult
    public static func every(seconds: Double, on target: SignalTarget = .anyWorker, unique: Bool = false,
                             _ body: @escaping (SignalFire) -> Void) throws -> Int {
        return try add(.every(nanoseconds: try interval { () throws(TimerIntervalError) in try TimerInterval.nanoseconds(seconds: seconds) }),
                       target, unique, body)
    }

    @discardableResult
    public static func every(milliseconds: Int, on target: SignalTarget = .anyWorker, unique: Bool = false,
                             _ body: @escaping (SignalFire) -> Void) throws -> Int {
        return try add(.every(nanoseconds: try interval { () throws(TimerIntervalError) in try TimerInterval.nanoseconds(milliseconds: milliseconds) }),
                       target, unique, body)
    }

    /// At local-time minutes matching the fields; -1 = any, -N = every N (uWSGI's cron).
    @discardableResult
    public static func cron(minute: Int = -1, hour: Int = -1, day: Int = -1, month: Int = -1, weekday: Int = -1,
                            on target: SignalTarget = .anyWorker, unique: Bool = false,
                            _ body: @escaping (SignalFire) -> Void) throws -> Int {
        let spec: CronSpec
        do { spec = try CronSpec(minute: minute, hour: hour, day: day, month: month, weekday: weekday) } catch {
            throw ServicesError("cron: \(error)")
        }
        return try add(.cron(spec), target, unique, body)
    }

    private static func add(_ kind: TimerScheduler.Kind, _ target: SignalTarget, _ unique: Bool,
                            _ body: @escaping (SignalFire) -> Void) throws -> Int {
        let signal = try currentServices.register(signal: nil, target: target, unique: unique, handler: body)
        try currentServices.addTimer(signal: signal, kind: kind)
        return signal
    }

    // uWSGI's signal framework, for bindings: register a handler, then attach timers to its number.

    /// `uwsgi.register_signal(num, target, func)`.
    public static func registerSignal(_ signal: Int, target: SignalTarget, unique: Bool = false,
                                      _ handler: @escaping (SignalFire) -> Void) throws {
        try currentServices.register(signal: signal, target: target, unique: unique, handler: handler)
    }

    /// `uwsgi.add_timer(num, seconds)` / `add_ms_timer(num, ms)`.
    public static func addTimer(signal: Int, nanoseconds: UInt64) throws {
        let ns = try interval { () throws(TimerIntervalError) in try TimerInterval.nanoseconds(nanoseconds) }
        try currentServices.addTimer(signal: signal, kind: .every(nanoseconds: ns))
    }

    /// `uwsgi.add_timer(num, seconds)`: the bound is checked before any multiplication.
    public static func addTimer(signal: Int, seconds: Int) throws {
        try addTimer(signal: signal, nanoseconds: try interval { () throws(TimerIntervalError) in try TimerInterval.nanoseconds(seconds: seconds) })
    }

    /// `uwsgi.add_ms_timer(num, ms)`.
    public static func addTimer(signal: Int, milliseconds: Int) throws {
        try addTimer(signal: signal, nanoseconds: try interval { () throws(TimerIntervalError) in try TimerInterval.nanoseconds(milliseconds: milliseconds) })
    }

    /// At most a year, above zero: out-of-range intervals are the caller's error, never the master's trap.
    private static func interval(_ convert: () throws(TimerIntervalError) -> UInt64) throws -> UInt64 {
        do { return try convert() } catch { throw ServicesError(error.description) }
    }

    /// `uwsgi.add_cron(num, minute, hour, day, month, weekday)`.
    public static func addCron(signal: Int, minute: Int, hour: Int, day: Int, month: Int, weekday: Int) throws {
        let spec: CronSpec
        do { spec = try CronSpec(minute: minute, hour: hour, day: day, month: month, weekday: weekday) } catch {
            throw ServicesError("cron: \(error)")
        }
        try currentServices.addTimer(signal: signal, kind: .cron(spec))
    }

    /// Runs unique jobs skipped because their previous run was still going (master only).
    public static var skippedUniqueRuns: Int {
        if case .master(let m) = currentServices.stage { return m.skippedUniqueRuns }
        return 0
    }
}
