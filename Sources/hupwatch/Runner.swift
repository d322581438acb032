import Glibc
import Posix
import ReloadCore

/// hupwatch's event loop: turns fds (signalfd, timerfd, inotify, notify sockets) into `ReloadSupervisor`
/// events and carries out the actions it answers with. One thread, one blocking poll: idle costs nothing.
final class Runner {
    let options: HupwatchOptions
    let executable: String
    /// The environment given to every generation: ours, minus what we replace per child.
    let childEnvironment: [String]
    let signals: SignalFD
    var timer: TimerFD
    var machine: ReloadSupervisor
    /// The listener handed to every generation (`--listen`, or one inherited through LISTEN_FDS).
    let listenerFD: Int32?
    let listenerName: String
    /// The inode of the --listen path's file when we bound it (fstat of the socket gives another number).
    let listenPathInode: ino_t?
    let socketGuard: SocketGuard?
    var watchers: [Int: ReadinessWatcher] = [:]
    /// Set once any generation sent READY=1: later ones are then expected to speak sd_notify too.
    var learnedNotify = false
    /// hupwatch's own supervisor's NOTIFY_SOCKET (systemd Type=notify), and a socket to send from.
    let upstreamNotify: String?
    let notifySender: Int32?
    /// The inode each generation served when it became ready (rebind mode), to put back on rollback.
    var servedInode: [Int: ino_t] = [:]
    /// Retiring generations whose listener (by socket file inode) must empty before the reload signal.
    var handovers: [Int: ino_t] = [:]
    var nextHandoverCheckAt: Instant?
    static let handoverCheckInterval: UInt64 = 2_000_000
    let pidString = String(getpid())

    static let handledSignals: [Int32] = [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH, SIGCHLD]

    /// Sets everything up, runs until the last generation is gone, and returns the exit code.
    static func start(_ options: HupwatchOptions) -> Int32 {
        let env = environmentSnapshot()
        let searchPath = lookup("PATH", in: env)
        var cmd = options.command[0]
        if cmd.contains("/"), !cmd.hasPrefix("/"), let dir = options.chdir {
            // The child chdirs before execve, so a relative --chdir is anchored at our working directory.
            var base = dir
            if !dir.hasPrefix("/"), let cwd = getcwd(nil, 0) {
                base = String(cString: cwd) + "/" + dir
                free(cwd)
            }
            cmd = base + "/" + cmd
        }
        let executable: String
        switch resolveExecutable(cmd, searchPath: searchPath) {
        case .found(let p): executable = p
        case .notFound:
            writeStderr("hupwatch: \(options.command[0]): command not found")
            return ExitCode.notFound
        case .notExecutable(let p):
            writeStderr("hupwatch: \(p): not executable")
            return ExitCode.notExecutable
        }
        if let dir = options.chdir, !isDirectory(dir) {
            writeStderr("hupwatch: --chdir \(dir): not a directory")
            return ExitCode.environment
        }
        for path in [options.listenPath, options.socketPath].compactMap({ $0 }) {
            let dir = splitPath(path).directory
            if !isDirectory(dir) {
                writeStderr("hupwatch: socket folder \(dir) does not exist (for \(path))")
                return ExitCode.environment
            }
        }
        do {
            let runner = try Runner(options: options, executable: executable, environment: env)
            return try runner.run()
        } catch let e as SetupError {
            writeStderr("hupwatch: \(e.message)")
            return ExitCode.environment
        } catch {
            writeStderr("hupwatch: \(error)")
            return ExitCode.environment
        }
    }

    struct SetupError: Error { let message: String }

    init(options: HupwatchOptions, executable: String, environment env: [String]) throws {
        self.options = options
        self.executable = executable
        // Signals are blocked before any child exists; the child's mask is reset in the spawn shim.
        signals = try SignalFD(Self.handledSignals)
        try ignoreSIGPIPE()
        timer = try TimerFD()
        try becomeChildSubreaper()
        var config = ReloadSupervisor.Config(gracefulTimeout: options.gracefulTimeout, readyTimeout: options.readyTimeout,
                                             reloadSignal: options.reloadSignal, onExit: options.onExit)
        if options.listenPath == nil, options.socketPath != nil, options.guardEnabled {
            // Rebind mode: the old listener gets no new connection once the path leads to the new one,
            // so its queue empties within milliseconds; a server that closes it on TERM would reset them.
            config.handoverNanoseconds = nanosecondsPerSecond
        }
        machine = ReloadSupervisor(config: config)
        upstreamNotify = lookup("NOTIFY_SOCKET", in: env)
        notifySender = upstreamNotify != nil ? try UnixSocket.datagram().release() : nil

        var inherited: Int32? = nil
        if lookup("LISTEN_PID", in: env) == String(getpid()), lookup("LISTEN_FDS", in: env) == "1" {
            // systemd socket activation: adopt fd 3, keep it away from the low fds children use.
            let fd = FileDescriptor(adopting: 3)
            inherited = try fd.duplicate(atLeast: 10).release()
        }
        listenerName = lookup("LISTEN_FDNAMES", in: env) ?? "hupwatch"
        childEnvironment = removing(["NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"], from: env)

        if let path = options.listenPath, inherited == nil {
            do {
                let fd = try UnixSocket.listen(path: path, backlog: SOMAXCONN, mode: mode_t(options.socketMode))
                listenerFD = try fd.duplicate(atLeast: 10).release()
                listenPathInode = UnixSocket.inode(atPath: path)
            } catch let e as SyscallError where e.errno == EADDRINUSE {
                throw SetupError(message: "--listen \(path): a live listener already serves this path; refusing to steal it")
            } catch let e as SyscallError where e.errno == EEXIST {
                throw SetupError(message: "--listen \(path): exists and is not a socket; refusing to replace it")
            }
        } else {
            listenerFD = inherited
            listenPathInode = nil
        }
        let guardPath = options.listenPath ?? (inherited == nil ? options.socketPath : nil)
        socketGuard = options.guardEnabled ? try guardPath.map { try SocketGuard(path: $0) } : nil
        if options.listenPath != nil { socketGuard?.trackCurrentPath() }
        if let pidFile = options.pidFile {
            do { try writeFileAtomically(pidFile, pidString + "\n") } catch {
                throw SetupError(message: "--pid-file \(pidFile): \(error)")
            }
        }
    }

    func log(_ message: String) {
        guard !options.quiet else { return }
        let gen = machine.currentNumber.map { " gen \($0)" } ?? ""
        writeStderr("\(timestamp()) hupwatch[\(pidString)]\(gen): \(message)")
    }

    func debug(_ message: String) { if options.verbose { log(message) } }

    func run() throws -> Int32 {
        if let path = options.socketPath, options.listenPath == nil, socketGuard != nil {
            log("guarding socket path \(path)\(options.socketPathDetected ? " (found in the command line)" : "")")
        }
        if let code = execute(machine.handle(.started, now: monotonicNanoseconds())) { return code }
        while true {
            let wake = ([machine.nextDeadline, nextHandoverCheckAt] + watchers.values.map(\.nextWake)).compactMap { $0 }.min()
            try timer.arm(at: wake)
            var fds: [Int32] = [signals.fd.raw, timer.fd.raw]
            if let g = socketGuard { fds.append(g.watch.fd.raw) }
            let order = watchers.keys.sorted()
            fds += order.map { watchers[$0]!.notifyFD }
            let ready = try waitReadable(fds)
            if let code = try dispatch(readyIndexes: Set(ready), order: order) { return code }
        }
    }

    /// Handles whatever woke the loop; returns an exit code once hupwatch is done.
    private func dispatch(readyIndexes: Set<Int>, order: [Int]) throws -> Int32? {
        if readyIndexes.contains(0) {
            while let (sig, _) = try signals.next() {
                if let code = execute(events(for: sig)) { return code }
            }
        }
        if readyIndexes.contains(1) { timer.acknowledge() }
        if let g = socketGuard, readyIndexes.contains(2) {
            for line in try g.handleEvents() {
                let draining = machine.generations.filter { $0.state == .draining }.map { String($0.number) }
                log(line + (draining.isEmpty ? "" : " (generation \(draining.joined(separator: ", ")) was draining)"))
            }
        }
        for n in order { if let w = watchers[n] { for line in w.readNotifications() { debug("generation \(n) says \(line)") } } }
        let now = monotonicNanoseconds()
        for n in order {
            guard let w = watchers[n], w.startedAt != 0, w.isReady(now: now) else { continue }
            if w.readySent { learnedNotify = true }
            if let code = execute(machine.handle(.ready(generation: n), now: now)) { return code }
        }
        if let at = nextHandoverCheckAt, at <= now, let code = checkHandovers(now: now) { return code }
        if let d = machine.nextDeadline, d <= monotonicNanoseconds() {
            if let code = execute(machine.handle(.deadlinePassed, now: monotonicNanoseconds())) { return code }
        }
        return nil
    }

    private func events(for sig: Int32) -> [ReloadSupervisor.Action] {
        let now = monotonicNanoseconds()
        switch sig {
        case SIGHUP: return machine.handle(.hangup, now: now)
        case SIGTERM, SIGINT, SIGQUIT:
            log("received \(SignalName.name(sig)): stopping every generation")
            return machine.handle(.terminate(signal: sig), now: now)
        case SIGCHLD:
            var actions: [ReloadSupervisor.Action] = []
            do {
                for (pid, status) in try reapChildren() {
                    let end: ProcessEnd = switch status {
                    case .exited(let c): .exited(c)
                    case .signaled(let s): .signaled(s)
                    }
                    actions += machine.handle(.childExited(pid: pid, status: end), now: now)
                }
            } catch { log("\(error)") }
            return actions
        default: return machine.handle(.forward(signal: sig), now: now)
        }
    }

    /// Carries out actions in order; actions that produce events feed them straight back.
    private func execute(_ actions: [ReloadSupervisor.Action]) -> Int32? {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .spawn(let n):
                queue = (spawnGeneration(n) + queue)[...]
            case .watchReadiness(let n):
                watchers[n]?.activate(now: monotonicNanoseconds())
            case .stopWatchingReadiness(let n):
                watchers[n] = nil
            case .signal(let sig, let pid):
                do {
                    if try !sendSignal(sig, to: pid) { debug("pid \(pid) was already gone for \(SignalName.name(sig))") }
                } catch { log("\(error)") }
            case .killGroup(let pgid):
                _ = try? sendSignal(SIGKILL, to: -pgid)
            case .guardSocket(let n):
                guardSocket(n)
            case .awaitQueueDrain(let n):
                if let ino = servedInode[n] {
                    handovers[n] = ino
                    nextHandoverCheckAt = monotonicNanoseconds()
                } else {
                    queue = (machine.handle(.queueDrained(generation: n), now: monotonicNanoseconds()) + queue)[...]
                }
            case .pauseGuard:
                // hupwatch's own listener path is never rebound by a child, so it stays guarded.
                if options.listenPath == nil { socketGuard?.paused = true }
            case .log(let m):
                if m.hasPrefix("reaped pid") { debug(m) } else { log(m) }
            case .notifySupervisor(let text):
                notifySupervisor(text)
            case .statusChanged:
                // Before the status file changes: whoever waits on it sees a settled process
                // (the release briefly holds /proc/self/maps open).
                releasePagesIfSettled()
                writeStatus()
            case .exit(let code):
                cleanUp()
                return code
            }
        }
        return nil
    }

    /// Reads each retiring listener's accept queue from the kernel; an empty (or vanished) one is handed over.
    private func checkHandovers(now: Instant) -> Int32? {
        nextHandoverCheckAt = nil
        let live = Set(machine.generations.map(\.number))
        for (n, ino) in handovers.sorted(by: { $0.key < $1.key }) {
            let queued: Int?
            do { queued = try UnixSocket.listenQueue(fileInode: ino) } catch {
                debug("\(error)")
                queued = nil
            }
            if !live.contains(n) || (queued ?? 0) == 0 {
                handovers[n] = nil
                if let q = queued { debug("generation \(n)'s listener is empty (\(q) queued): sending the reload signal") }
                if let code = execute(machine.handle(.queueDrained(generation: n), now: monotonicNanoseconds())) { return code }
            }
        }
        if !handovers.isEmpty { nextHandoverCheckAt = now + Self.handoverCheckInterval }
        return nil
    }

    private func spawnGeneration(_ n: Int) -> [ReloadSupervisor.Action] {
        let now = monotonicNanoseconds()
        let watcher: ReadinessWatcher
        do {
            watcher = try ReadinessWatcher(generation: n, mode: options.ready, probePath: options.probePath,
                                           expectNotify: learnedNotify)
        } catch {
            return machine.handle(.spawnFailed(generation: n, reason: "\(error)", shellCode: ExitCode.environment), now: now)
        }
        var env = childEnvironment
        env.append("NOTIFY_SOCKET=" + watcher.notifyAddress)
        env.append("HUPWATCH_GENERATION=\(n)")
        if listenerFD != nil { env.append("LISTEN_FDNAMES=" + listenerName) }
        let request = SpawnRequest(executablePath: executable, argv: options.command, environment: env,
                                   workingDirectory: options.chdir, listener: listenerFD,
                                   parentDeathSignal: options.killAtExit ? SIGKILL : nil)
        do {
            let pid = try spawn(request)
            watchers[n] = watcher
            return machine.handle(.spawned(generation: n, pid: pid), now: monotonicNanoseconds())
        } catch let e as SpawnError {
            return machine.handle(.spawnFailed(generation: n, reason: "\(options.command[0]): \(e)", shellCode: e.shellCode), now: now)
        } catch {
            return machine.handle(.spawnFailed(generation: n, reason: "\(error)", shellCode: ExitCode.environment), now: now)
        }
    }

    private func guardSocket(_ n: Int) {
        guard let g = socketGuard else { return }
        if options.listenPath != nil {
            g.paused = false
            if let line = g.putBack() { log(line) }
            return
        }
        if servedInode[n] != nil {
            if let line = g.putBack() { log(line) }
        } else if let ino = g.trackCurrentPath() {
            servedInode[n] = ino
        } else {
            debug("generation \(n) serves no socket at \(g.path) yet; the guard waits")
        }
        let live = Set(machine.generations.map(\.number))
        servedInode = servedInode.filter { live.contains($0.key) }
    }

    private func notifySupervisor(_ text: String) {
        guard let address = upstreamNotify, let fd = notifySender else { return }
        var message = text
        if text.hasPrefix("RELOADING=1") { message += "\nMONOTONIC_USEC=\(monotonicNanoseconds() / 1000)" }
        do { try UnixSocket.send(datagram: message, to: address, from: fd) } catch { log("sd_notify: \(error)") }
    }

    /// Once everything is settled (one generation, serving, no reload under way), hand back the pages
    /// start-up and the last reload touched: an idle wrapper should cost next to nothing.
    private func releasePagesIfSettled() {
        guard machine.generations.count == 1, machine.current?.state == .ready, machine.pending == nil, !machine.stopping else { return }
        releaseStartupPages()
    }

    private func writeStatus() {
        guard let path = options.statusFile else { return }
        do { try writeFileAtomically(path, statusJSON(machine, now: monotonicNanoseconds())) } catch {
            log("--status-file: \(error)")
        }
    }

    private func cleanUp() {
        if let path = options.listenPath, let mine = listenPathInode {
            // Remove the path only while it is still our listener's.
            if UnixSocket.inode(atPath: path) == mine { unlink(path) }
        }
        if let pidFile = options.pidFile { unlink(pidFile) }
        watchers = [:]
    }
}
