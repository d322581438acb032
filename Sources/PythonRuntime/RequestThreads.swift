import CGlibcShim
import Glibc

/// The GIL protocol of a worker with request threads (`--threads` > 1): every request thread gets
/// its own Python thread state once (`attach`), keeps it for life in thread-local storage, and holds
/// the GIL only while Python runs, as the single-threaded worker does with its one saved state.
/// (PyGILState_Ensure/Release per request would make and free a thread state each time, losing the
/// app's `threading.local` data between requests.)
public final class RequestThreads: @unchecked Sendable {
    let api: CPythonAPI
    /// The calling thread's saved state while it does not hold the GIL.
    private var key = pthread_key_t()
    /// PyThreadState_SetAsyncExc(thread id, exception): stable ABI since 3.2.
    private let setAsyncExc: (@convention(c) (UInt, PyObjectPointer?) -> Int32)?

    init(api: CPythonAPI) throws(PythonLoadError) {
        self.api = api
        let rc = pthread_key_create(&key, nil)
        guard rc == 0 else { throw PythonLoadError("pthread_key_create: \(String(cString: strerror(rc)))") }
        // libpython is loaded RTLD_GLOBAL: its symbols are found from the global scope.
        setAsyncExc = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "PyThreadState_SetAsyncExc")
            .map { unsafeBitCast($0, to: (@convention(c) (UInt, PyObjectPointer?) -> Int32).self) }
    }

    /// In a new request thread, first: makes its Python thread state and releases the GIL.
    public func attach() {
        _ = api.PyGILState_Ensure()
        save(api.PyEval_SaveThread())
    }

    private func save(_ t: OpaquePointer?) { _ = pthread_setspecific(key, UnsafeRawPointer(t)) }
    private func saved() -> OpaquePointer? { pthread_getspecific(key).map { OpaquePointer($0) } }

    /// Runs `body` holding the GIL with this thread's state; a thread already holding it just runs.
    @inline(__always)
    public func withGIL<T>(_ body: () throws -> T) rethrows -> T {
        guard let t = saved() else { return try body() }
        save(nil)
        api.PyEval_RestoreThread(t)
        defer { save(api.PyEval_SaveThread()) }
        return try body()
    }

    /// Raises `exception` in the thread `thread` (its pthread id, which is CPython's thread id on
    /// Linux) the next time it runs Python code. Call with the GIL held. False when no such thread
    /// runs Python or the function is missing.
    /// Drops an interrupt raised into this thread too late for its request (the request ended between
    /// the graceful signal's check and the raise): the next request must not get it. GIL held.
    public func clearPendingInterrupt() {
        _ = setAsyncExc?(UInt(pthread_self()), nil)
    }

    public func raise(_ exception: PyObjectPointer, inThread thread: UInt) -> Bool {
        guard let setAsyncExc else { return false }
        return setAsyncExc(thread, exception) == 1
    }
}
