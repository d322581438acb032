import Glibc
import Posix

/// Locks shared by every worker and mule: lock 0 always exists, `--locks N` adds 1...N. A process
/// killed while holding one (harakiri) does not leave it held: the next taker gets it (robust mutex).
///
/// ```swift
/// try Locks.withLock(1) { try cache.update("report", render()) }
/// ```
public enum Locks {
    /// How many locks exist (1 + `--locks`).
    public static var count: Int { currentServices.setup?.locks.count ?? 0 }

    static func mutex(_ n: Int) throws -> RobustMutex {
        let all = currentServices.setup?.locks ?? []
        guard n >= 0, n < all.count else {
            throw ServicesError(all.isEmpty ? "locks are not available outside swsgi"
                : "lock \(n) does not exist: locks are 0...\(all.count - 1) (--locks \(all.count - 1))")
        }
        return all[n]
    }

    /// Blocks until this process holds lock `n`. Returns false in the rare case that the previous holder
    /// died holding it (it is held now all the same; what it guarded may be half-updated).
    @discardableResult
    public static func lock(_ n: Int = 0) throws -> Bool {
        let m = try mutex(n)
        let acquired: RobustMutex.Acquired
        do { acquired = try m.lock() } catch let e as SyscallError where e.errno == EDEADLK {
            throw ServicesError("lock(\(n)): this process already holds lock \(n) (locks do not nest)")
        }
        if acquired == .previousOwnerDied {
            ServerLog.line("lock \(n): its holder died holding it; taken over by pid \(getpid())")
            return false
        }
        return true
    }

    /// Throws when this process does not hold lock `n`.
    public static func unlock(_ n: Int = 0) throws {
        do { try mutex(n).unlock() } catch let e as SyscallError where e.errno == EPERM {
            throw ServicesError("unlock(\(n)): this process does not hold lock \(n)")
        }
    }

    /// Runs `body` holding lock `n`, releasing it however `body` ends (uWSGI's missing context manager).
    public static func withLock<T>(_ n: Int = 0, _ body: () throws -> T) throws -> T {
        try lock(n)
        defer { try? unlock(n) }
        return try body()
    }

    /// Takes lock `n` only if it is free: true when taken.
    public static func tryLock(_ n: Int = 0) throws -> Bool {
        switch try mutex(n).tryLock() {
        case nil: return false
        case .clean: return true
        case .previousOwnerDied:
            ServerLog.line("lock \(n): its holder died holding it; taken over by pid \(getpid())")
            return true
        }
    }
}
