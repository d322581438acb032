import CGlibcShim
import Glibc

/// An anonymous MAP_SHARED mapping: made by the master before it forks, so every worker and mule
/// sees the same bytes at the same address. Never unmapped (it lives as long as the process).
public struct SharedMapping: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) throws {
        guard let p = shim_map_shared(byteCount), shim_map_failed(p) == 0 else {
            throw SyscallError("mmap", errno: errno, context: "\(byteCount) bytes shared")
        }
        base = p
        self.byteCount = byteCount
    }
}

/// A process-shared robust pthread mutex living in shared memory (`shim_mutex_size()` bytes at `at`).
/// A holder that dies (SIGKILL by harakiri) does not leave it locked: the next `lock()` gets it with
/// `.previousOwnerDied`, repairs what it guards, and `lock()` marks it consistent.
public struct RobustMutex: @unchecked Sendable {
    public let address: UnsafeMutableRawPointer
    public static var byteCount: Int { Int(shim_mutex_size()) }

    public init(at address: UnsafeMutableRawPointer) { self.address = address }

    /// Initialises the mutex (once, in the master, before any fork).
    public func initialize() throws {
        let rc = shim_robust_mutex_init(address)
        if rc != 0 { throw SyscallError("pthread_mutex_init", errno: rc, context: "robust, process-shared") }
    }

    public enum Acquired { case clean, previousOwnerDied }

    /// Blocks until held. On `.previousOwnerDied`, `repair` runs while the lock is held, then the mutex
    /// is marked consistent, so the guarded state is whole again before anyone else sees it.
    @discardableResult
    public func lock(repair: () -> Void = {}) throws -> Acquired {
        while true {
            let rc = shim_mutex_lock(address)
            if rc == 0 { return .clean }
            if rc == shim_EOWNERDEAD() {
                repair()
                let c = shim_mutex_consistent(address)
                if c != 0 { throw SyscallError("pthread_mutex_consistent", errno: c) }
                return .previousOwnerDied
            }
            if rc == EINTR { continue }
            throw SyscallError("pthread_mutex_lock", errno: rc)
        }
    }

    /// nil when another process holds it.
    public func tryLock(repair: () -> Void = {}) throws -> Acquired? {
        let rc = shim_mutex_trylock(address)
        if rc == 0 { return .clean }
        if rc == EBUSY { return nil }
        if rc == shim_EOWNERDEAD() {
            repair()
            let c = shim_mutex_consistent(address)
            if c != 0 { throw SyscallError("pthread_mutex_consistent", errno: c) }
            return .previousOwnerDied
        }
        throw SyscallError("pthread_mutex_trylock", errno: rc)
    }

    public func unlock() throws {
        let rc = shim_mutex_unlock(address)
        if rc != 0 { throw SyscallError("pthread_mutex_unlock", errno: rc) }
    }
}

/// Word-sized atomic access to shared memory (the C11 builtins through the shim).
public enum SharedWord {
    @inline(__always) public static func loadAcquire(_ p: UnsafeMutableRawPointer) -> UInt64 { shim_load_acquire_u64(p) }
    @inline(__always) public static func storeRelease(_ p: UnsafeMutableRawPointer, _ v: UInt64) { shim_store_release_u64(p, v) }
    @inline(__always) @discardableResult
    public static func fetchAdd(_ p: UnsafeMutableRawPointer, _ d: Int64) -> Int64 { shim_fetch_add_i64(p, d) }
    @inline(__always) public static func load32(_ p: UnsafeMutableRawPointer) -> Int32 { shim_load_i32(p) }
    @inline(__always) public static func store32(_ p: UnsafeMutableRawPointer, _ v: Int32) { shim_store_i32(p, v) }
    @inline(__always) public static func compareExchange32(_ p: UnsafeMutableRawPointer, _ expected: Int32, _ desired: Int32) -> Bool {
        shim_cas_i32(p, expected, desired) != 0
    }
    @inline(__always) public static func compareExchange64(_ p: UnsafeMutableRawPointer, _ expected: Int64, _ desired: Int64) -> Bool {
        shim_cas_i64(p, expected, desired) != 0
    }
}
