/// Which process of swsgi this is: what its log lines say they come from, and what the `uwsgi` module's
/// `worker_id()` and `mule_id()` answer.
enum ProcessRole: Equatable {
    /// Before the master set the services up (the configuration, the app's import).
    case starting
    case master
    case worker(Int)
    case mule(Int)
}
