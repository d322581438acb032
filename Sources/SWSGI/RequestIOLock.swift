import Glibc
import Posix

/// Serialises one connection's socket I/O done on a request's behalf between the worker's thread and
/// the app's own threads (a thread that calls write() or wsgi.input.read() while the worker streams or
/// drains the body). Taken only without the GIL, so a holder that needs the GIL (a signal handler run
/// from a blocked write) can never wait on a thread that holds the GIL and waits for this lock.
/// Recursive: wsgi.input's buffer holds it around a read that pulls from the body reader, which takes
/// it again. One per connection, made at accept: the mutex lives in the object's own allocation
/// (ManagedBuffer's tail), so a connection pays one small allocation and a request none.
public final class RequestIOLock: ManagedBuffer<Void, pthread_mutex_t> {
    static func make() -> RequestIOLock {
        let lock = unsafeDowncast(RequestIOLock.create(minimumCapacity: 1) { _ in () }, to: RequestIOLock.self)
        lock.withUnsafeMutablePointerToElements { mutex in
            var attributes = pthread_mutexattr_t()
            pthread_mutexattr_init(&attributes)
            pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
            pthread_mutex_init(mutex, &attributes)
            pthread_mutexattr_destroy(&attributes)
        }
        return lock
    }

    deinit {
        _ = withUnsafeMutablePointerToElements { pthread_mutex_destroy($0) }
    }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try withUnsafeMutablePointerToElements { mutex in
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }

    /// `withLock` if no other thread holds the lock; nil (and `body` not run) if one does.
    func withLockIfFree<T>(_ body: () throws -> T) rethrows -> T? {
        try withUnsafeMutablePointerToElements { mutex in
            guard pthread_mutex_trylock(mutex) == 0 else { return nil }
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }

    /// `withLock`, trying until `deadline` (monotonic ns) instead of waiting for ever: nil when the holder
    /// kept it (a thread blocked in a write to a slow client, or in a read of a slow body).
    func withLock<T>(tryingUntil deadline: UInt64, _ body: () throws -> T) rethrows -> T? {
        try withUnsafeMutablePointerToElements { mutex in
            while pthread_mutex_trylock(mutex) != 0 {
                if monotonicNanoseconds() >= deadline { return nil }
                var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
                nanosleep(&pause, nil)
            }
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }
}
