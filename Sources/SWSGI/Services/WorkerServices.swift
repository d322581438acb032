import Glibc
import Posix
import ServicesCore

/// A worker's or a mule's side of the services, made right after its fork and owned by that process: the
/// app's registrations (whose handlers run here, and which `--lazy-apps` may extend), and the queues the
/// master sends it signals, messages and function calls on.
final class WorkerServices: @unchecked Sendable {
    enum Role: Equatable {
        case worker(Int)
        case mule(Int)
    }

    let setup: ServicesSetup
    let role: Role
    let registrations: RegistrationBook
    /// Scratch space for receiving records, shared by the loop and a mule's threads: held around the
    /// non-blocking recv only.
    private let receiveLock = Monitor()
    private var receiveBuffer: [UInt8] = []

    private init(setup: ServicesSetup, role: Role, registrations: ServiceRegistrations) {
        self.setup = setup
        self.role = role
        self.registrations = RegistrationBook(registrations)
    }

    /// In a freshly forked worker or mule: its services, made the process's current ones (for the static API)
    /// and its log lines' origin.
    static func enter(setup: ServicesSetup, role: Role, registrations: ServiceRegistrations) -> WorkerServices {
        let services = WorkerServices(setup: setup, role: role, registrations: registrations)
        currentServices.enterChild(services)
        switch role {
        case .worker(let id): LogRouter.shared.enter(.worker(id))
        case .mule(let id): LogRouter.shared.enter(.mule(id))
        }
        return services
    }

    /// uwsgidecorators' `@postfork` and `ServerProcess.afterFork`: once, right after the fork.
    func runPostForkHooks() {
        for hook in registrations.read({ $0.postForkHooks }) { hook() }
    }

    // MARK: queues

    /// The worker's signal queues (shared: EPOLLEXCLUSIVE, one worker wakes; its own), none in a mule.
    var workerQueues: [(fd: Int32, exclusive: Bool)] {
        guard case .worker(let id) = role else { return [] }
        return setup.workerQueues(id)
    }

    /// The worker's queues are readable: run one record from each (between requests). One, not all:
    /// epoll is level-triggered, so a backlog comes back next round, after requests and master signals.
    func workerQueuesReadable() {
        for (fd, _) in workerQueues {
            if let r = receive(fd).flatMap(ServiceRecord.init) { _ = run(r) }
        }
    }

    private func receive(_ fd: Int32) -> [UInt8]? {
        receiveLock.withLock { try? RecordChannel.receive(fd, buffer: &receiveBuffer) }
    }

    /// In a mule: the next message, running any signal or function that arrives first. nil on timeout
    /// (-1 = wait forever), or when this process is not a mule.
    func receiveMessage(timeoutMilliseconds: Int32 = -1) -> [UInt8]? {
        guard case .mule(let id) = role else { return nil }
        let fds = setup.muleQueues(id)
        guard !fds.isEmpty else { return nil }
        // Saturating: an absurd timeout waits "forever" instead of trapping.
        let deadline = timeoutMilliseconds < 0 ? UInt64.max : monotonicNanoseconds().saturatingAdd(UInt64(timeoutMilliseconds).saturatingMultiply(1_000_000))
        while true {
            for fd in fds {
                while let bytes = receive(fd) {
                    if let r = ServiceRecord(bytes), let message = run(r) { return message }
                }
            }
            let now = monotonicNanoseconds()
            if now >= deadline { return nil }
            let wait = deadline == .max ? -1 : Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            _ = try? waitReadable(fds, timeoutMilliseconds: wait)
        }
    }

    /// Runs a signal or function record here; returns a message record's payload.
    func run(_ record: ServiceRecord) -> [UInt8]? {
        switch record {
        case .signal(let signal, let at):
            guard let reg = registrations.read({ $0.signals[signal] }) else {
                ServerLog.line("signal \(signal) arrived but has no handler in this process")
                return nil
            }
            if reg.unique { setup.uniqueRuns.markRunning(signal) }
            reg.handler(SignalFire(signal: signal, scheduledAt: at))
            if reg.unique { setup.uniqueRuns.clear(signal) }
            return nil
        case .message(let m):
            return m
        case .function(let name, let payload):
            guard let f = registrations.read({ $0.muleFunctions[name] }) else {
                ServerLog.line("mule function '\(name)' is not registered in this process")
                return nil
            }
            f(payload)
            return nil
        }
    }
}
