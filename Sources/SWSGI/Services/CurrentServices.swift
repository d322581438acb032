import Glibc
import Posix
import ServicesCore
import SWSGIConfig

/// This process's services, for the callers that cannot be handed a value: the static API an app calls
/// (`Cache`, `Timers`, `Mules`, `Locks`, `ServerProcess`, `ProcessTitle`) and, through `UWSGIBinding`, the
/// Python `uwsgi` module's C callbacks. It points at one value: the registrations made while swsgi starts
/// (the app's import), then the master's services, then, set once right after the fork, the worker's or
/// mule's. Master, Worker and the rest are handed their value explicitly and never look here.
let currentServices = CurrentServices()

final class CurrentServices: @unchecked Sendable {
    enum Stage {
        /// Before the set-up: the options (for `numproc` and the like during the import) and what the app registers.
        case starting(ServerOptions, RegistrationBook)
        case master(MasterServices)
        case child(WorkerServices)
    }

    /// Request threads read the stage while a thread of the app may register: held for the read or the swap only.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var current = Stage.starting(ServerOptions(cores: 1), RegistrationBook(ServiceRegistrations()))

    fileprivate init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    var stage: Stage {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return current
    }

    /// The options are known (before the app loads): registrations so far are kept.
    func configure(_ options: ServerOptions) {
        swap { stage in
            if case .starting(_, let book) = stage { stage = .starting(options, book) }
        }
    }

    /// The master's set-up: shared memory mapped, channels open, from what the app registered so far.
    func setUpMaster() throws -> MasterServices {
        guard case .starting(let options, let book) = stage else { throw ServicesError("the services are set up once, in the master") }
        let setup = try ServicesSetup.make(options, registrations: book.snapshot)
        let master = MasterServices(setup: setup, registrations: book)
        swap { $0 = .master(master) }
        LogRouter.shared.enter(.master)
        return master
    }

    /// Right after a fork, with one thread: the lock is made afresh (another thread of the parent may have held it).
    func enterChild(_ services: WorkerServices) {
        pthread_mutex_init(mutex, nil)
        swap { $0 = .child(services) }
    }

    private func swap(_ body: (inout Stage) -> Void) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        body(&current)
    }
}

extension CurrentServices {
    /// The shared caches, locks and channels; nil before the master set them up.
    var setup: ServicesSetup? {
        switch stage {
        case .starting: nil
        case .master(let m): m.setup
        case .child(let w): w.setup
        }
    }

    var options: ServerOptions {
        switch stage {
        case .starting(let o, _): o
        case .master(let m): m.setup.options
        case .child(let w): w.setup.options
        }
    }

    var role: ProcessRole {
        switch stage {
        case .starting: .starting
        case .master: .master
        case .child(let w):
            switch w.role {
            case .worker(let n): .worker(n)
            case .mule(let n): .mule(n)
            }
        }
    }

    /// What the app registered in this process.
    var registrations: RegistrationBook { registrations(of: stage) }

    /// Before the set-up the registration is simply remembered; after it, it goes into the shared table
    /// too, where the master finds it (see SharedSignalTable). Returns the signal (`nil`: a free one).
    @discardableResult
    func register(signal: Int?, target: SignalTarget, unique: Bool, handler: @escaping (SignalFire) -> Void) throws -> Int {
        let stage = self.stage
        let publish: ((Int) throws -> Void)?
        switch stage {
        case .starting: publish = nil
        case .master(let m): publish = { try m.setup.publish(signal: $0, target: target, unique: unique, inChild: false) }
        case .child(let w): publish = { try w.setup.publish(signal: $0, target: target, unique: unique, inChild: true) }
        }
        return try registrations(of: stage).register(signal: signal, target: target, unique: unique, handler: handler, publish: publish)
    }

    /// A timer for a registered signal: kept for the set-up, or (after it) added to the shared table once
    /// however many lazy workers add it, and the master woken to schedule it.
    func addTimer(signal: Int, kind: TimerScheduler.Kind) throws {
        let stage = self.stage
        try registrations(of: stage).requireHandler(signal)
        switch stage {
        case .starting(_, let book): book.change { $0.timers.append((signal, kind)) }
        case .master(let m): try m.setup.publishTimer(signal: signal, kind: kind)
        case .child(let w): try w.setup.publishTimer(signal: signal, kind: kind)
        }
    }

    private func registrations(of stage: Stage) -> RegistrationBook {
        switch stage {
        case .starting(_, let book): book
        case .master(let m): m.registrations
        case .child(let w): w.registrations
        }
    }
}
