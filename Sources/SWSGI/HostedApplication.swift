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
}
