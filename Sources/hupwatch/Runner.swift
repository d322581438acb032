import Glibc
import Posix
import ReloadCore

/// hupwatch's edge: runs on the shared `Reactor`, turns what it reports into `ReloadSupervisor` events one
/// at a time, and performs the actions each answers with. Results of actions (a spawn, a probe, a queue
/// reading) are fed back as events of their own, after the batch that asked for them and before the next
/// outside event. All policy lives in the supervisor; this file only does I/O.
final class Runner {
    let options: HupwatchOptions
    let executable: String
    /// The environment given to every generation: ours, minus what we replace per child.
    let childEnvironment: [String]
    let reactor: Reactor
    var machine: ReloadSupervisor
    /// The listener handed to every generation (`--listen`, or one inherited through LISTEN_FDS).
    let listenerFD: Int32?
    let listenerName: String
    /// The inode of the --listen path's file when we bound it (fstat of the socket gives another number).
    let listenPathInode: ino_t?
    let socketGuard: SocketGuard?
    let notifyFolder: NotifyFolder
    var notifyChannels: [Int: NotifyChannel] = [:]
    var probes: [Int: ReadinessProbe] = [:]
    /// The inode each generation served when it became ready (rebind mode), to put back on rollback and
    /// to read its listen queue during a hand-over.
    var servedInode: [Int: ino_t] = [:]
    /// hupwatch's own supervisor's NOTIFY_SOCKET (systemd Type=notify).
    let upstream: SdNotifier?
    /// Events produced by carrying out actions, handled before the next outside event.
    var results: [ReloadSupervisor.Event] = []
    let pidString = String(getpid())

    static let handledSignals: [Int32] = [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH]

    /// Reactor tokens: the guard's inotify fd, then one range per kind keyed by generation number.
    enum Token {
        static let socketGuard: UInt64 = 1
        static let notifyBase: UInt64 = 1 << 40
        static let probeBase: UInt64 = 2 << 40
        static func notify(_ n: Int) -> UInt64 { notifyBase + UInt64(n) }
        static func probe(_ n: Int) -> UInt64 { probeBase + UInt64(n) }
    }

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
        reactor = try Reactor(signals: Self.handledSignals)
        try ignoreSIGPIPE()
        try becomeChildSubreaper()
        var config = ReloadSupervisor.Config(gracefulTimeout: options.gracefulTimeout, readyTimeout: options.readyTimeout,
                                             reloadSignal: options.reloadSignal, onExit: options.onExit)
        config.readiness = options.ready
        config.canProbe = options.probePath != nil
        if options.listenPath == nil, options.socketPath != nil, options.guardEnabled {
            // Rebind mode: the old listener gets no new connection once the path leads to the new one,
            // so its queue empties within milliseconds; a server that closes it on TERM would reset them.
            config.handoverNanoseconds = nanosecondsPerSecond
        }
        machine = ReloadSupervisor(config: config)
        upstream = try SdNotifier(environment: env)
        let tmp = lookup("TMPDIR", in: env)
        notifyFolder = try NotifyFolder(base: tmp)

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
        if let g = socketGuard { try reactor.watch(g.watch.fd.raw, token: Token.socketGuard) }
        if let pidFile = options.pidFile {
            do { try writeFileAtomically(pidFile, pidString + "\n") } catch {
                throw SetupError(message: "--pid-file \(pidFile): \(error)")
            }
        }
    }

    func log(_ message: String) {
        guard !options.quiet else { return }
        let gen = machine.servingNumber.map { " gen \($0)" } ?? ""
        writeStderr("\(timestamp()) hupwatch[\(pidString)]\(gen): \(message)")
    }

    func debug(_ message: String) { if options.verbose { log(message) } }

    /// Says at start which protection against a lost socket path is in force, and how to get one if none.
    private func logProtection() {
        if let path = options.listenPath {
            log("protection: hupwatch owns the listener at \(path) (--listen); every generation inherits it")
        } else if listenerFD != nil {
            log("protection: hupwatch hands its inherited listener (LISTEN_FDS) to every generation")
        } else if let path = options.socketPath, socketGuard != nil {
            log("protection: guard on \(path) (\(options.socketPathSource.description)): a path an old generation removes is put back")
        } else if let path = options.socketPath {
            log("warning: protection: none (--no-guard): if an old generation removes \(path), it stays removed")
        } else {
            log("warning: protection: none: hupwatch knows no socket path of this command. Give --listen PATH (hupwatch owns the listener) or --socket PATH / --ready socket:PATH (hupwatch guards the path)")
        }
    }

    func run() throws -> Int32 {
        if let code = feed(.started) { return code }
        logProtection()
        while true {
            try reactor.setDeadline(machine.nextDeadline)
            let event = try reactor.next()
            if let code = handle(event) { return code }
        }
    }

    /// One outside event, then every result event its actions produced.
    private func handle(_ event: Reactor.Event) -> Int32? {
        let now = monotonicNanoseconds()
        switch event {
        case .signal(let sig, _):
            switch sig {
            case SIGHUP: return feed(.hangup)
            case SIGTERM, SIGINT, SIGQUIT: return feed(.terminate(signal: sig))
            default: return feed(.forward(signal: sig))
            }
        case .childExited(let pid, let status):
            return feed(.childExited(pid: pid, status: status))
        case .deadline:
            guard let d = machine.nextDeadline, d <= now else { return nil }
            return feed(.deadlinePassed)
        case .readable(let token, _):
            if token == Token.socketGuard { guardEvents(); return nil }
            if token >= Token.probeBase { return probeReadable(Int(token - Token.probeBase)) }
            if token >= Token.notifyBase { return notifyReadable(Int(token - Token.notifyBase)) }
            return nil
        }
    }

    /// Hands `event` to the supervisor, performs the actions, then the result events they produced.
    private func feed(_ event: ReloadSupervisor.Event) -> Int32? {
        results.append(event)
        while !results.isEmpty {
            let next = results.removeFirst()
            if let code = execute(machine.handle(next, now: monotonicNanoseconds())) { return code }
        }
        return nil
    }

    private func execute(_ actions: [ReloadSupervisor.Action]) -> Int32? {
        for action in actions {
            switch action {
            case .spawn(let n):
                results.append(spawnGeneration(n))
            case .probe(let n):
                startProbe(n)
            case .cancelProbe(let n):
                stopProbe(n)
            case .stopProbing(let n):
                stopProbe(n)
                probes[n] = nil
            case .checkQueue(let n):
                results.append(.queueChecked(generation: n, queued: listenQueue(of: n)))
            case .forget(let n):
                stopProbe(n)
                if let c = notifyChannels.removeValue(forKey: n) { reactor.unwatch(c.fd, token: Token.notify(n)) }
                probes[n] = nil
                servedInode[n] = nil
            case .signal(let sig, let pid):
                do {
                    if try !sendSignal(sig, to: pid) { debug("pid \(pid) was already gone for \(SignalName.name(sig))") }
                } catch { log("\(error)") }
            case .killGroup(let pgid):
                _ = try? sendSignal(SIGKILL, to: -pgid)
            case .setGuard(let command):
                setGuard(command)
            case .log(let m):
                log(m)
            case .debug(let m):
                debug(m)
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

    // MARK: spawning

    private func spawnGeneration(_ n: Int) -> ReloadSupervisor.Event {
        let channel: NotifyChannel
        do {
            channel = try NotifyChannel(folder: notifyFolder, generation: n)
            try reactor.watch(channel.fd, token: Token.notify(n))
        } catch {
            return .spawnFailed(generation: n, reason: "NOTIFY_SOCKET: \(error)", shellCode: ExitCode.environment)
        }
        var env = childEnvironment
        env.append("NOTIFY_SOCKET=" + channel.path)
        env.append("HUPWATCH_GENERATION=\(n)")
        if listenerFD != nil { env.append("LISTEN_FDNAMES=" + listenerName) }
        // Taken before the fork, so the probe knows the inode the path had before this generation.
        let probe = options.probePath.map { ReadinessProbe(path: $0, httpPath: options.httpProbePath) }
        let request = SpawnRequest(executablePath: executable, argv: options.command, environment: env,
                                   workingDirectory: options.chdir, listener: listenerFD,
                                   parentDeathSignal: options.killAtExit ? SIGKILL : nil)
        do {
            let pid = try spawn(request)
            notifyChannels[n] = channel
            probes[n] = probe
            return .spawned(generation: n, pid: pid)
        } catch let e as SpawnError {
            reactor.unwatch(channel.fd, token: Token.notify(n))
            return .spawnFailed(generation: n, reason: "\(options.command[0]): \(e)", shellCode: e.shellCode)
        } catch {
            reactor.unwatch(channel.fd, token: Token.notify(n))
            return .spawnFailed(generation: n, reason: "\(error)", shellCode: ExitCode.environment)
        }
    }

    // MARK: readiness

    private func notifyReadable(_ n: Int) -> Int32? {
        guard let channel = notifyChannels[n], let pid = machine.generation(n)?.pid else { return nil }
        for message in channel.read(generationPID: pid) {
            switch message {
            case .foreign(let sender):
                log("ignored a datagram on generation \(n)'s NOTIFY_SOCKET from pid \(sender), which is not one of its processes")
            case .fromGeneration(let m):
                debug("generation \(n) says \(m.assignments.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
                if let code = feed(.notified(generation: n, ready: m.saysReady)) { return code }
            }
        }
        return nil
    }

    private func startProbe(_ n: Int) {
        guard let probe = probes[n] else {
            results.append(.probed(generation: n, accepting: false))
            return
        }
        let before = probe.connection
        let outcome = probe.start()
        if outcome == .waiting {
            if probe.connection != before { try? reactor.watch(probe.connection, token: Token.probe(n)) }
            return
        }
        if before >= 0 && probe.connection != before { reactor.unwatch(before, token: Token.probe(n)) }
        results.append(.probed(generation: n, accepting: outcome == .accepting))
    }

    private func probeReadable(_ n: Int) -> Int32? {
        guard let probe = probes[n], probe.connection >= 0 else { return nil }
        let fd = probe.connection
        let outcome = probe.readAnswer()
        if outcome == .waiting { return nil }
        reactor.unwatch(fd, token: Token.probe(n))
        return feed(.probed(generation: n, accepting: outcome == .accepting))
    }

    private func stopProbe(_ n: Int) {
        guard let probe = probes[n] else { return }
        if probe.connection >= 0 { reactor.unwatch(probe.connection, token: Token.probe(n)) }
        probe.cancel()
    }

    // MARK: the socket path

    private func setGuard(_ command: ReloadSupervisor.GuardCommand) {
        guard let g = socketGuard else { return }
        switch command {
        case .follow(let n):
            if options.listenPath != nil || listenerFD != nil {
                // hupwatch's own listener: the same inode serves every generation.
                if let line = g.putBack() { log(line) }
                g.trackCurrentPath()
            } else if servedInode[n] != nil {
                if let line = g.putBack() { log(line) }
            } else if let ino = g.trackCurrentPath() {
                servedInode[n] = ino
            } else {
                debug("generation \(n) serves no socket at \(g.path) yet; the guard waits")
            }
        case .hold:
            // hupwatch's own listener path is never rebound by a child, so it stays guarded.
            if options.listenPath == nil { g.hold() }
        case .off:
            g.turnOff()
        }
    }

    private func guardEvents() {
        guard let g = socketGuard else { return }
        do {
            for line in try g.handleEvents() {
                let draining = machine.generations.filter { if case .draining = $0.phase { true } else { false } }
                log(line + (draining.isEmpty ? "" : " (generation \(draining.map { String($0.number) }.joined(separator: ", ")) was draining)"))
            }
        } catch { log("\(error)") }
    }

    private func listenQueue(of n: Int) -> Int? {
        guard let ino = servedInode[n] else { return nil }
        do { return try UnixSocket.listenQueue(fileInode: ino) } catch {
            debug("\(error)")
            return nil
        }
    }

    // MARK: reporting

    private func notifySupervisor(_ text: String) {
        guard let upstream else { return }
        do { try upstream.send(text) } catch { log("sd_notify: \(error)") }
    }

    /// Once everything is settled (one generation, serving, no reload under way), hand back the pages
    /// start-up and the last reload touched: an idle wrapper should cost next to nothing.
    private func releasePagesIfSettled() {
        guard machine.generations.count == 1, machine.serving?.phase == .ready, case .running = machine.mode else { return }
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
        for n in Array(probes.keys) { stopProbe(n) }
        probes = [:]
        notifyChannels = [:]
        notifyFolder.remove()
    }
}
