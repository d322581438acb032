import Foundation
import Glibc

// Load loops: client threads sending requests without pause while a test reloads, recycles or kills,
// counting what was answered and what failed.

/// Client threads each sending one GET per connection (HTTP/1.0, read to EOF) back to back, counting
/// answers (200) and failures until stopped. Each failure is tagged with the reload the test said was
/// under way (`startingReload`), and the pids that answered (TestChild's body) are collected.
public final class LoadClient: @unchecked Sendable {
    public let endpoint: Endpoint
    /// The Unix socket path ("" for TCP).
    public let path: String
    private let concurrency: Int
    private let timeoutSeconds: Double
    private let pauseMicroseconds: UInt32
    private let lock = NSLock()
    private var ok = 0
    private var failureList: [(reload: Int, error: String)] = []
    private var reload = 0
    private var answeredBy: Set<pid_t> = []
    private var stopRequested = false
    private var started = false
    private var running = 0

    /// Load on the Unix socket at `path`: `concurrency` threads, each pausing `pauseMicroseconds` between
    /// requests (keeps two shared cores usable by the servers under test). `start`: begin at once; else
    /// call `start()`.
    public convenience init(path: String, concurrency: Int = 3, timeoutSeconds: Int = 5, pauseMicroseconds: UInt32 = 1000,
                            start: Bool = true) {
        self.init(endpoint: .unix(path), concurrency: concurrency, timeoutSeconds: timeoutSeconds,
                  pauseMicroseconds: pauseMicroseconds, start: start)
    }

    public init(endpoint: Endpoint, concurrency: Int = 3, timeoutSeconds: Int = 5, pauseMicroseconds: UInt32 = 1000,
                start: Bool = true) {
        self.endpoint = endpoint
        if case .unix(let p) = endpoint { path = p } else { path = "" }
        self.concurrency = concurrency
        self.timeoutSeconds = Double(timeoutSeconds)
        self.pauseMicroseconds = pauseMicroseconds
        if start { self.start() }
    }

    /// Starts the client threads (once; later calls do nothing).
    public func start() {
        let first = lock.withLock {
            if started { return false }
            started = true
            running = concurrency
            return true
        }
        guard first else { return }
        for _ in 0..<concurrency { Thread { [self] in loop() }.start() }
    }

    private func loop() {
        while !(lock.withLock { stopRequested }) {
            let result = getOnce(endpoint, timeoutSeconds: timeoutSeconds)
            lock.withLock {
                switch result {
                case .success(let r) where r.status == 200:
                    ok += 1
                    if let pid = pid_t(r.body) { answeredBy.insert(pid) }
                case .success(let r): failureList.append((reload, "status \(r.status): \(r.body.prefix(80))"))
                case .failure(let e): failureList.append((reload, e.description))
                }
            }
            if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
        }
        lock.withLock { running -= 1 }
    }

    /// Tags failures from now on with reload `n`.
    public func startingReload(_ n: Int) { lock.withLock { reload = n } }

    public var succeeded: Int { lock.withLock { ok } }
    public var failedCount: Int { lock.withLock { failureList.count } }
    public var completed: Int { lock.withLock { ok + failureList.count } }
    public var failures: [(reload: Int, error: String)] { lock.withLock { failureList } }
    /// The first ten failures' texts.
    public var failureSamples: [String] { lock.withLock { failureList.prefix(10).map(\.error) } }
    public var clientsRunning: Int { lock.withLock { running } }

    public func snapshot() -> (succeeded: Int, failures: [(reload: Int, error: String)], pids: Int) {
        lock.withLock { (ok, failureList, answeredBy.count) }
    }

    /// Waits until `more` requests beyond the count now have been answered.
    public func waitForMore(_ more: Int, timeout: Double = 20) async throws {
        let target = succeeded + more
        try await waitFor("\(more) more answered requests (now \(succeeded), failed \(failedCount): \(failureSamples))",
                          timeout: timeout) { succeeded >= target }
    }

    /// Waits (blocking) until `more` requests beyond the count now have been answered.
    public func waitForMoreBlocking(_ more: Int, timeout: Double = 20) throws {
        let target = succeeded + more
        try waitUntil(timeout, "\(more) more answered requests (now \(succeeded), failed \(failedCount): \(failureSamples))") {
            succeeded >= target
        }
    }

    /// Stops the threads and waits for them (each finishes its current request); throws after 15 s.
    public func stop() throws {
        lock.withLock { stopRequested = true }
        try waitUntil(15, "the load client threads to finish") { clientsRunning == 0 }
    }

    /// Stops the threads and waits (async) for them.
    public func stop() async {
        lock.withLock { stopRequested = true }
        try? await waitFor("the client threads to end", timeout: 15) { clientsRunning == 0 }
    }
}

/// 2-4 client threads looping until stopped: keep-alive HTTP/1.1 connections (several requests each)
/// mixed with a new connection per request (HTTP/1.0 and HTTP/1.1 `Connection: close`).
public final class LoadGenerator: @unchecked Sendable {
    public struct Tally: Sendable {
        public var ok = 0
        public var failures: [String] = []
        public var keepAliveReused = 0
    }
    public let tally = Locked(Tally())
    private let running = Locked(true)
    private let live = Locked(0)
    public let socket: String
    public let path: String

    public init(socket: String, path: String = "/", clients: Int = 4) {
        self.socket = socket
        self.path = path
        live.set(clients)
        for i in 0..<clients {
            Thread { [self] in
                self.loop(client: i)
                self.live.update { $0 -= 1 }
            }.start()
        }
    }

    private func record(_ outcome: Result<HTTPResponse, Error>, what: String) {
        tally.update { t in
            switch outcome {
            case .success(let r) where r.status == 200: t.ok += 1
            case .success(let r): t.failures.append("\(what): status \(r.status)")
            case .failure(let e): t.failures.append("\(what): \(e)")
            }
        }
    }

    private func loop(client: Int) {
        var round = 0
        while running.get() {
            round += 1
            // Even clients favour keep-alive, odd ones new connections; each also does the other now and then.
            let keepAlive = (client % 2 == 0) != (round % 5 == 0)
            if keepAlive {
                let c: HTTPConnection
                do { c = try HTTPConnection(socket) } catch {
                    record(.failure(error), what: "connect")
                    continue
                }
                for n in 0..<8 where running.get() {
                    do {
                        try c.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
                        let r = try c.readResponse(timeout: 5)
                        record(.success(r), what: "keep-alive request \(n + 1)")
                        if n > 0 { tally.update { $0.keepAliveReused += 1 } }
                        if !r.keepAlive { break }
                    } catch {
                        record(.failure(error), what: "keep-alive request \(n + 1)")
                        break
                    }
                }
            } else {
                let http10 = round % 2 == 0
                record(Result { try request(socket, path, http10: http10) }, what: http10 ? "HTTP/1.0 request" : "HTTP/1.1 close request")
            }
        }
    }

    /// Stops the clients and waits for them (each finishes its current request).
    public func stop() async throws -> Tally {
        running.set(false)
        try await waitFor(15, "load clients to finish") { live.get() == 0 }
        return tally.get()
    }
}
