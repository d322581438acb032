import Glibc
import Posix
import ServicesCore

/// Mules: extra processes under the master (`--mule`, `--mule=FILE`), respawned when they die. Workers
/// send them messages (delivered in order, and kept while a mule restarts); a mule either runs a loop
/// of its own or serves registered functions.
///
/// ```swift
/// Mules.onMessage { bytes in index(bytes) }                    // --mule: the default loop
/// Mules.registerFunction("thumbnail") { path in makeThumb(path) }
/// Mules.registerLoop("reporter") {                              // --mule=reporter
///     while true { if let m = Mules.receiveMessage(timeoutMilliseconds: 1000) { report(m) } }
/// }
/// serve { request in
///     try Mules.send(Array(request.path.utf8))                   // to the first free mule
///     try Mules.call("thumbnail", Array("/img/1.png".utf8), mule: 1)
///     return Response(text: "queued\n")
/// }
/// ```
public enum Mules {
    /// The largest message (one SOCK_SEQPACKET record).
    public static let maxMessageBytes = 64 * 1024

    /// This process's mule id (1-based), 0 when it is not a mule.
    public static var id: Int {
        if case .mule(let n) = currentServices.role { return n }
        return 0
    }

    /// How many mules are configured.
    public static var count: Int { currentServices.options.mules.count }

    /// Handler for messages in the default loop (`--mule` without FILE).
    public static func onMessage(_ handler: @escaping ([UInt8]) -> Void) {
        currentServices.registrations.change { $0.muleMessageHandler = handler }
    }

    /// A function mules can be asked to run by name (uwsgidecorators' `@mulefunc`).
    public static func registerFunction(_ name: String, _ body: @escaping ([UInt8]) -> Void) {
        currentServices.registrations.change { $0.muleFunctions[name] = body }
    }

    /// The loop a `--mule=NAME` runs; when it returns the mule exits and is respawned.
    public static func registerLoop(_ name: String, _ body: @escaping () -> Void) {
        currentServices.registrations.change { $0.muleLoops[name] = body }
    }

    /// Queues `message` for mule `mule` (0 = the first free one). Waits up to a second while the queue is
    /// full, then throws: a message is never dropped silently.
    public static func send(_ message: [UInt8], to mule: Int = 0) throws {
        try checkSize(message)
        try sendRecord(ServiceRecord.message(message).bytes, to: mule)
    }

    /// Asks a mule to run the function registered as `name` with `payload`.
    public static func call(_ name: String, _ payload: [UInt8] = [], mule: Int = 0) throws {
        let n = Array(name.utf8)
        guard !n.isEmpty, n.count < 256 else { throw ServicesError("mule function names are 1-255 bytes") }
        try checkSize(payload)
        try sendRecord(ServiceRecord.function(name: name, payload: payload).bytes, to: mule)
    }

    private static func checkSize(_ payload: [UInt8]) throws {
        // The record (payload, kind byte, a function name of up to 255 bytes) stays within what a receiver takes whole.
        guard payload.count <= maxMessageBytes else {
            throw ServicesError("mule message of \(payload.count) bytes refused (at most \(maxMessageBytes))")
        }
    }

    private static func sendRecord(_ record: [UInt8], to mule: Int) throws {
        let setup = currentServices.setup
        let fd: Int32
        if mule == 0 {
            guard let a = setup?.anyMule else { throw ServicesError("no mules: start swsgi with --mule") }
            fd = a.writeEnd
        } else {
            let channels = setup?.muleChannels ?? []
            guard mule >= 1, mule <= channels.count else {
                throw ServicesError("mule \(mule) does not exist (\(channels.count) configured)")
            }
            fd = channels[mule - 1].writeEnd
        }
        if try RecordChannel.send(fd, record, timeoutMilliseconds: 1000) == .full {
            throw ServicesError("mule \(mule == 0 ? "queue" : "\(mule)'s queue") is full (nothing read it for 1 s); message not sent")
        }
    }

    /// In a mule: the next message, running any signal or function that arrives first. nil on timeout
    /// (-1 = wait forever), or when called outside a mule.
    public static func receiveMessage(timeoutMilliseconds: Int32 = -1) -> [UInt8]? {
        guard case .child(let services) = currentServices.stage else { return nil }
        return services.receiveMessage(timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// Process titles from the app: what `ps` shows, after `--procname-prefix`.
public enum ProcessTitle {
    /// Sets this process's title (uWSGI's `setprocname`).
    public static func set(_ title: String) {
        let o = currentServices.options
        setProcessTitle(o.procnamePrefix + title + o.process.procnameAppend)
    }
}

/// Who this process is, for apps and bindings (`uwsgi.worker_id()`, `mule_id()`, `masterpid()`, `numproc`).
public enum ServerProcess {
    /// 1-based worker id, 0 outside a worker.
    public static var workerID: Int {
        if case .worker(let n) = currentServices.role { return n }
        return 0
    }
    public static var muleID: Int { Mules.id }
    /// 0 before the master set the services up.
    public static var masterPID: Int32 { currentServices.setup?.masterPID ?? 0 }
    /// `--processes`.
    public static var processes: Int { currentServices.options.processes }

    /// Runs `body` in each worker and mule right after its fork (uwsgidecorators' `@postfork`). Register
    /// before `serve`. Timers added here reach the master too, once however many workers add them (what
    /// an app imported in each worker, as with `--lazy-apps`, does).
    public static func afterFork(_ body: @escaping () -> Void) { currentServices.registrations.change { $0.postForkHooks.append(body) } }
}
