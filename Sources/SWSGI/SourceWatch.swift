/// `--py-autoreload` in a worker: the app's source files (an inotify `ChangeWatch` the host keeps up to date
/// as the app imports more), and the host's check that a changed file can be loaded at all.
public final class SourceWatch {
    public let files: ChangeWatch
    /// Why `file` cannot be loaded as it is now (a syntax error), or nil. Called from the worker's loop.
    let problem: (String) -> String?

    public init(files: ChangeWatch, problem: @escaping (String) -> String?) {
        self.files = files
        self.problem = problem
    }

    /// The watch's fd is readable: a changed file that compiles asks the master to reload every worker (it
    /// ignores the same word from workers already retiring, so each worker's noticing is one reload). One
    /// that does not compile (an editor saving half a change) leaves the workers on the code they loaded:
    /// reloading would only stop swsgi on the import error; the next save that compiles reloads.
    func changed(tell: (WorkerMessage) -> Void) {
        guard let file = files.changed() else { return }
        if let why = problem(file) {
            ServerLog.line("py-autoreload: \(file) changed but cannot be loaded (\(why)): the workers keep the code they loaded; save a version that compiles to reload")
            return
        }
        ServerLog.line("py-autoreload: \(file) changed: asking the master to reload the workers")
        tell(.sourceChanged)
    }
}
