import Posix
import ServicesCore

/// Signal registrations and timers in shared memory, so that ones made after the fork (`--lazy-apps`:
/// each worker imports the app and registers its timers) reach the master, and lazy workers
/// registering the same timer add it once. Layout: robust mutex (64 B), 256 signal entries of 16 B
/// (registered, target kind, target number, unique), the timer count (64 B), 128 timers of 48 B.
struct SharedSignalTable: @unchecked Sendable {
    static let signalEntries = 256
    static let timerCapacity = 128
    static let bytes = 64 + signalEntries * 16 + 64 + timerCapacity * 48

    let base: UnsafeMutableRawPointer
    var mutex: RobustMutex { RobustMutex(at: base) }
    private func signalEntry(_ s: Int) -> UnsafeMutableRawPointer { base + 64 + s * 16 }
    private var timerCountWord: UnsafeMutableRawPointer { base + 64 + Self.signalEntries * 16 }
    private func timerEntry(_ i: Int) -> UnsafeMutableRawPointer { timerCountWord + 64 + i * 48 }

    func initialize() throws { try mutex.initialize() }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        // Entries are published last (release stores), so a holder that died left nothing half-visible.
        try mutex.lock()
        defer { try? mutex.unlock() }
        return try body()
    }

    // MARK: signals

    private static func encode(_ t: SignalTarget) -> (Int32, Int32) {
        switch t {
        case .anyWorker: (1, 0)
        case .worker(let n): (2, Int32(n))
        case .allWorkers: (3, 0)
        case .anyMule: (4, 0)
        case .mule(let n): (5, Int32(n))
        case .allMules: (6, 0)
        }
    }

    private static func decode(_ kind: Int32, _ n: Int32) -> SignalTarget? {
        switch kind {
        case 1: .anyWorker
        case 2: .worker(Int(n))
        case 3: .allWorkers
        case 4: .anyMule
        case 5: .mule(Int(n))
        case 6: .allMules
        default: nil
        }
    }

    /// Records a registration; the same one again is fine, a different one for the same number is refused.
    func setSignal(_ s: Int, target: SignalTarget, unique: Bool) throws {
        try withLock {
            if let existing = signal(s) {
                if existing.target == target && existing.unique == unique { return }
                throw ServicesError("signal \(s) is already registered for \(existing.target)\(existing.unique ? " (unique)" : "")")
            }
            let e = signalEntry(s)
            let (kind, n) = Self.encode(target)
            e.storeBytes(of: kind, toByteOffset: 4, as: Int32.self)
            e.storeBytes(of: n, toByteOffset: 8, as: Int32.self)
            e.storeBytes(of: unique ? 1 : 0, toByteOffset: 12, as: Int32.self)
            SharedWord.store32(e, 1)
        }
    }

    func signal(_ s: Int) -> (target: SignalTarget, unique: Bool)? {
        let e = signalEntry(s)
        guard SharedWord.load32(e) == 1,
              let t = Self.decode(e.load(fromByteOffset: 4, as: Int32.self), e.load(fromByteOffset: 8, as: Int32.self)) else { return nil }
        return (t, e.load(fromByteOffset: 12, as: Int32.self) != 0)
    }

    // MARK: timers

    var timerCount: Int { Int(SharedWord.loadAcquire(timerCountWord)) }

    /// Adds a timer unless the same one (signal and schedule) is there already; true when added.
    func addTimer(signal: Int, kind: TimerScheduler.Kind) throws -> Bool {
        try withLock {
            let n = timerCount
            for i in 0..<n { if let t = timer(i), t.signal == signal, t.kind == kind { return false } }
            guard n < Self.timerCapacity else { throw ServicesError("timer table full (\(Self.timerCapacity) timers)") }
            let e = timerEntry(n)
            e.storeBytes(of: Int32(signal), as: Int32.self)
            switch kind {
            case .every(let ns):
                e.storeBytes(of: Int32(1), toByteOffset: 4, as: Int32.self)
                e.storeBytes(of: ns, toByteOffset: 8, as: UInt64.self)
            case .cron(let c):
                e.storeBytes(of: Int32(2), toByteOffset: 4, as: Int32.self)
                for (i, v) in [c.minute, c.hour, c.day, c.month, c.weekday].enumerated() {
                    e.storeBytes(of: Int32(v), toByteOffset: 16 + 4 * i, as: Int32.self)
                }
            }
            SharedWord.storeRelease(timerCountWord, UInt64(n + 1))
            return true
        }
    }

    func timer(_ i: Int) -> (signal: Int, kind: TimerScheduler.Kind)? {
        let e = timerEntry(i)
        let signal = Int(e.load(as: Int32.self))
        switch e.load(fromByteOffset: 4, as: Int32.self) {
        case 1: return (signal, .every(nanoseconds: e.load(fromByteOffset: 8, as: UInt64.self)))
        case 2:
            let f = (0..<5).map { Int(e.load(fromByteOffset: 16 + 4 * $0, as: Int32.self)) }
            guard let spec = try? CronSpec(minute: f[0], hour: f[1], day: f[2], month: f[3], weekday: f[4]) else { return nil }
            return (signal, .cron(spec))
        default: return nil
        }
    }
}
