/// An app living in a runtime with process-wide state of its own (an embedded Python interpreter):
/// the master tells it about each fork, and each worker asks it for the `Application` it serves.
public protocol HostedApplication: AnyObject {
    /// What the master logs as the app.
    var description: String { get }
    /// In the master, just before fork.
    func prepareFork()
    /// In the master, just after fork.
    func parentAfterFork()
    /// In the new worker, just after fork, before anything else runs there.
    func childAfterFork()
    /// In the worker: the application it serves (apps loaded lazily are imported here). A throw
    /// ends the worker with `ExitCode.appLoadFailed`.
    func workerApplication(workerID: Int) throws -> Application
    /// In a worker with `--threads` > 1, instead of `workerApplication`: one `Application` per request
    /// thread. `overrunning` answers, when harakiri's graceful signal arrives, the request threads
    /// (pthread ids) past their harakiri deadline: the host interrupts those, and only those.
    func workerThreadApplications(workerID: Int, threads: Int,
                                  overrunning: @escaping () -> [UInt]) throws -> RequestThreadApplications
    /// In a worker, once its app is loaded: the app's source files to watch (`--py-autoreload`), kept up
    /// to date by the host as the app imports more; nil when not asked for. A change asks the master
    /// to reload the workers.
    var sourceWatch: SourceWatch? { get }
    /// In a worker about to exit after a graceful stop or retirement: the app's exit handlers (Python's atexit,
    /// `uwsgi.atexit`) run, as under uWSGI and gunicorn.
    func workerExiting()
}

extension HostedApplication {
    public func workerExiting() {}
}

/// What a worker with request threads runs.
public struct RequestThreadApplications {
    /// One per request thread: each called by its own thread only.
    public let apps: [Application]
    /// Runs first in each request thread (Python: the thread's own thread state).
    public let threadStarted: () -> Void
    /// Runs in the worker's main thread when its wait was interrupted (a signal may have arrived):
    /// a host whose signal handlers run later (Python's) runs them here.
    public let signalsArrived: () -> Void

    public init(apps: [Application], threadStarted: @escaping () -> Void = {}, signalsArrived: @escaping () -> Void = {}) {
        self.apps = apps
        self.threadStarted = threadStarted
        self.signalsArrived = signalsArrived
    }
}
