import CGlibcShim
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
    /// The listeners handed to every generation as fds 3, 4, ... (`--listen`, or inherited through LISTEN_FDS).
    let listenerFDs: [Int32]
    let listenerNames: [String]
    /// The --listen paths we bound, with their file's inode (fstat of the socket gives another number):
    /// removed at exit only while they are still ours.
    let ownedListenPaths: [(path: String, inode: ino_t)]
    let socketGuard: SocketGuard?
    /// Rewrite mode: where the path stands in the command; each generation binds its own private path.
    let rewrite: SocketArgument?
    /// Rewrite mode: the public path and the generations' private paths.
    let publicPath: PublicPath?
    /// One hupwatch per socket path: held from before anything is bound until exit.
    let locks: [PathLock]
    /// Datagrams from other processes since the last log line about them, and when the next may be logged.
    var foreignDatagrams = 0
    var nextForeignLogAt: Instant = 0
    let control: ControlServer
    /// s6's notification-fd: written once when the first generation is ready, then closed.
    var readinessFD: Int32?
    let notifyFolder: NotifyFolder
    var notifyChannels: [Int: NotifyChannel] = [:]
    var probes: [Int: ReadinessProbe] = [:]
    /// The inode each generation served when it became ready (rebind mode), to read its listen queue
    /// during a hand-over.
    var servedInode: [Int: ino_t] = [:]
    /// `-k`: the pipe to the group reaper, which SIGKILLs every generation's process group if hupwatch
    /// dies, and which group each generation has.
    var groupReaper: Int32?
    var reaperGroups: [Int: Int32] = [:]
    /// hupwatch's own supervisor's NOTIFY_SOCKET (systemd Type=notify).
    let upstream: SdNotifier?
    /// Events produced by carrying out actions, handled before the next outside event.
    var results: [ReloadSupervisor.Event] = []
    let pidString = String(getpid())

    static let handledSignals: [Int32] = [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH]

    /// Reactor tokens: the guard's inotify fd, then one range per kind keyed by generation number.
    enum Token {
        static let socketGuard: UInt64 = 1
        static let control: UInt64 = 2
        static let controlClientBase: UInt64 = 1 << 32
        static let notifyBase: UInt64 = 1 << 40
        static let probeBase: UInt64 = 2 << 40
        static func notify(_ n: Int) -> UInt64 { notifyBase + UInt64(n) }
        static func probe(_ n: Int) -> UInt64 { probeBase + UInt64(n) }
        static func controlClient(_ fd: Int32) -> UInt64 { controlClientBase + UInt64(UInt32(bitPattern: fd)) }
    }

    /// Sets everything up, runs until the last generation is gone, and returns the exit code.
    static func start(_ given: HupwatchOptions) -> Int32 {
        let env = environmentSnapshot()
        let options: HupwatchOptions
        switch resolvingRelativePaths(given) {
        case .success(let o): options = o
        case .failure(let e):
            writeStderr("hupwatch: \(e.message)")
            return ExitCode.usage
        }
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
        for (flag, file) in [("--status-file", options.statusFile), ("--pid-file", options.pidFile)] {
            if let file, !isDirectory(splitPath(file).directory) {
                writeStderr("hupwatch: \(flag) \(file): folder \(splitPath(file).directory) does not exist")
                return ExitCode.environment
            }
        }
        let unixListenPaths = options.listens.compactMap { if case .unix(let p) = $0.address { p } else { nil } }
        for path in unixListenPaths + [options.socketPath].compactMap({ $0 }) {
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

    /// The pid a --pid-file (`N`) or --status-file (`{"pid":N,...`) names when it is another live hupwatch
    /// (as gunicorn's --pid refuses a running master's file); nil for no file, a stale pid, or a pid reused
    /// by another program.
    static func runningHupwatch(named file: String) -> pid_t? {
        guard var text = try? readTextFile(file, maxBytes: 1 << 20) else { return nil }
        if text.hasPrefix("{\"pid\":") { text = String(text.dropFirst("{\"pid\":".count)) }
        guard let pid = pid_t(String(text.prefix { $0.isASCII && $0.isNumber })), pid > 0, pid != getpid(),
              kill(pid, 0) == 0 || errno == EPERM,
              let theirs = try? readTextFile("/proc/\(pid)/comm", maxBytes: 64),
              let ours = try? readTextFile("/proc/self/comm", maxBytes: 64), theirs == ours else { return nil }
        return pid
    }

    /// The socket path hupwatch probes, guards and points, made absolute: the command runs in --chdir (if
    /// given), so a relative path there means a path in that folder, whatever hupwatch's own folder is.
    static func resolvingRelativePaths(_ given: HupwatchOptions) -> Result<HupwatchOptions, SetupError> {
        var o = given
        var base = ""
        if let cwd = getcwd(nil, 0) {
            base = String(cString: cwd)
            free(cwd)
        }
        if let dir = o.chdir { base = dir.hasPrefix("/") ? dir : base + "/" + dir }
        // The folder is resolved once, here: with `--chdir current` (a symlink switched at each release),
        // the public path, the private ones and the lock stay where they were when hupwatch started,
        // and a switch never strands them in an old release folder.
        func absolute(_ p: String) -> String {
            let full = p.hasPrefix("/") ? p : base + "/" + p
            let (dir, name) = splitPath(full)
            guard let real = realpath(dir, nil) else { return full }
            defer { free(real) }
            let resolved = String(cString: real)
            return (resolved == "/" ? "" : resolved) + "/" + name
        }
        // A path in the command line is where the command binds it: in its own `--chdir` folder, if it
        // names one (gunicorn and uWSGI change there before binding), taken from the folder it starts in.
        let commandBase = SocketArgument.commandChdir(in: o.command).map { $0.hasPrefix("/") ? $0 : base + "/" + $0 }
        func absoluteInCommand(_ p: String) -> String {
            guard let commandBase, !p.hasPrefix("/") else { return absolute(p) }
            return absolute(commandBase + "/" + p)
        }
        if let a = o.socketArgument {
            // `--socket PATH` naming the same path as the command means the same file.
            if o.socketPath == a.path { o.socketPath = absoluteInCommand(a.path) } else if let p = o.socketPath { o.socketPath = absolute(p) }
            o.socketArgument = a.with(path: absoluteInCommand(a.path))
        } else if let p = o.socketPath {
            o.socketPath = absolute(p)
        }
        if case .socket(let p) = o.ready { o.ready = .socket(path: absolute(p)) }
        for p in [o.socketPath, o.socketArgument?.path].compactMap({ $0 }) {
            if let problem = SocketPath.problem(p) { return .failure(SetupError(message: "\(problem) (made absolute from --chdir)")) }
        }
        return .success(o)
    }

    init(options: HupwatchOptions, executable: String, environment env: [String]) throws {
        self.options = options
        self.executable = executable
        // Before hupwatch opens any fd of its own: a number that was not handed in must not be mistaken
        // for one of ours (and then written to and closed at the first ready).
        readinessFD = try Self.readinessFD(options.notifyFD)
        // Signals are blocked before any child exists; the child's mask is reset in the spawn shim.
        reactor = try Reactor(signals: Self.handledSignals)
        try ignoreSIGPIPE()
        try becomeChildSubreaper()
        if options.killAtExit {
            // Forked now, single-threaded and before any generation exists.
            var fd: Int32 = -1
            guard shim_start_group_reaper(&fd) > 0 else { throw SyscallError("fork(group reaper)") }
            groupReaper = fd
        }
        let socketActivated = lookup("LISTEN_PID", in: env) == String(getpid()) && (lookup("LISTEN_FDS", in: env).flatMap(Int.init) ?? 0) > 0
        let config = ReloadSupervisor.Config(options: options, socketActivated: socketActivated)
        machine = ReloadSupervisor(config: config)
        upstream = try SdNotifier(environment: env)
        // What set-up made so far is undone if a later step fails: no stray folder, socket or link.
        var undo: [() -> Void] = []
        do {
            // One hupwatch per path, decided before anything is bound or removed there.
            var taken: [PathLock] = []
            let unixListens = options.listens.compactMap { if case .unix(let p) = $0.address { p } else { nil } }
            // Only the paths hupwatch binds, points or guards: with --no-guard and no rewrite it never
            // touches the command's path (whose folder it may not be allowed to write).
            var managed = unixListens
            switch config.protection {
            case .rewrite(let p), .guardedRebind(let p): managed.append(p)
            case .ownedListener, .inherited, .none: break
            }
            for path in managed {
                let (dir, name) = splitPath(path)
                let lockPath = dir + "/." + name + ".lock"
                do {
                    guard let lock = try PathLock.acquire(lockPath) else {
                        throw SetupError(message: "another hupwatch serves \(path) (it holds \(lockPath)); refusing to start a second one")
                    }
                    taken.append(lock)
                    undo.append { lock.release() }
                } catch let e as SyscallError {
                    throw SetupError(message: "cannot lock \(path): \(e)")
                }
            }
            locks = taken
            let folder = try NotifyFolder(base: lookup("TMPDIR", in: env))
            notifyFolder = folder
            undo.append { folder.remove() }

            // systemd socket activation: adopt fds 3.. and keep them away from the low fds children get.
            var inherited: [Int32] = []
            var inheritedNames: [String] = []
            if lookup("LISTEN_PID", in: env) == String(getpid()), let n = lookup("LISTEN_FDS", in: env).flatMap(Int32.init), n > 0, n < 64 {
                let names = (lookup("LISTEN_FDNAMES", in: env) ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                for i in 0..<n {
                    let fd = FileDescriptor(adopting: 3 + i)
                    inherited.append(try fd.duplicate(atLeast: 10 + 64).release())
                    inheritedNames.append(Int(i) < names.count && !names[Int(i)].isEmpty ? names[Int(i)] : "hupwatch")
                }
            }
            childEnvironment = removing(["NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "HUPWATCH_GENERATION"], from: env)

            var fds: [Int32] = []
            var owned: [(String, ino_t)] = []
            if inherited.isEmpty {
                for l in options.listens {
                    let fd: FileDescriptor
                    do {
                        switch l.address {
                        case .unix(let path):
                            fd = try UnixSocket.listen(path: path, backlog: SOMAXCONN, mode: mode_t(options.socketMode))
                            if let ino = UnixSocket.inode(atPath: path) {
                                owned.append((path, ino))
                                undo.append { if UnixSocket.inode(atPath: path) == ino { unlink(path) } }
                            }
                        case .tcp(let host, let port):
                            fd = try TCPSocket.listen(host: host, port: port, backlog: SOMAXCONN)
                        }
                    } catch let e as SyscallError where e.errno == EADDRINUSE {
                        throw SetupError(message: "--listen \(l.address): a live listener already serves this address; refusing to steal it")
                    } catch let e as SyscallError where e.errno == EEXIST {
                        throw SetupError(message: "--listen \(l.address): exists and is not a socket; refusing to replace it")
                    } catch {
                        throw SetupError(message: "--listen \(l.address): \(error)")
                    }
                    // Above every target fd (3 + count), so no dup2 in the child clobbers another listener.
                    fds.append(try fd.duplicate(atLeast: 10 + 64).release())
                }
            }
            if !inherited.isEmpty {
                switch options.ready {
                case .socket, .http:
                    throw SetupError(message: "--ready socket:/http: cannot be used with an inherited listener (LISTEN_FDS): every generation shares it, so a probe cannot tell the new one answered; use notify, auto or delay:SEC")
                default: break
                }
            }
            listenerFDs = inherited.isEmpty ? fds : inherited
            listenerNames = inherited.isEmpty ? options.listens.map(\.name) : inheritedNames
            ownedListenPaths = owned

            rewrite = config.protection.rewrites ? options.socketArgument : nil
            let pub = rewrite.map { PublicPath(path: $0.path) }
            publicPath = pub
            if let pub {
                try pub.prepare(log: { writeStderr("\(timestamp()) hupwatch[\(getpid())]: \($0)") })
                undo.append { pub.removeAtExit() }
            }
            let guardPath = options.listenPath ?? (listenerFDs.isEmpty ? options.socketPath : nil)
            let theGuard = options.guardEnabled || rewrite != nil ? try guardPath.map { try SocketGuard(path: $0) } : nil
            socketGuard = theGuard
            undo.append { theGuard?.removeLink() }
            if options.listenPath != nil { socketGuard?.trackCurrentPath() }
            if let g = socketGuard { try reactor.watch(g.watch.fd.raw, token: Token.socketGuard) }
            let controlServer = try ControlServer(folder: folder.path)
            control = controlServer
            undo.append { controlServer.closeAll(reason: "") }
            try reactor.watch(control.fd, token: Token.control)
            // The files a control verb finds hupwatch through: another running one's are not taken over.
            for (flag, file) in [("--pid-file", options.pidFile), ("--status-file", options.statusFile)] {
                if let file, let holder = Self.runningHupwatch(named: file) {
                    throw SetupError(message: "\(flag) \(file) names hupwatch \(holder), which is running; refusing to replace it (give each hupwatch its own)")
                }
            }
            if let pidFile = options.pidFile {
                do { try writeFileAtomically(pidFile, pidString + "\n") } catch {
                    throw SetupError(message: "--pid-file \(pidFile): \(error)")
                }
            }
        } catch {
            for step in undo.reversed() { step() }
            throw error
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
        switch machine.config.protection {
        case .ownedListener:
            log("protection: hupwatch owns the listeners \(options.listens.map { "\($0.name)=\($0.address)" }.joined(separator: ", ")) (--listen); every generation inherits them")
        case .inherited:
            log("protection: hupwatch hands its \(listenerFDs.count) inherited listener(s) (LISTEN_FDS) to every generation")
        case .rewrite(let path):
            log("protection: rewrite mode on \(path): each generation binds its own path beside it (.\(splitPath(path).name).gN), and \(path) is pointed at a generation once it is ready (--no-rewrite turns this off)")
        case .guardedRebind(let path):
            log("protection: guard on \(path) (\(options.socketPathSource.description)): a path an old generation removes is put back")
        case .none:
            if let path = options.socketPath {
                log("warning: protection: none (--no-guard): if an old generation removes \(path), it stays removed")
            } else if !options.ambiguousSocketPaths.isEmpty {
                log("warning: protection: none: the command names several socket paths (\(options.ambiguousSocketPaths.joined(separator: ", "))), so rewrite mode is off (one public path is pointed per reload, not several at once). swsgi hands each of its paths over by itself; for another server give --listen for each path (hupwatch owns them all), or --socket PATH to guard one")
            } else {
                log("warning: protection: none: hupwatch knows no socket path of this command. Give --listen PATH (hupwatch owns the listener) or --socket PATH / --ready socket:PATH (hupwatch guards the path)")
            }
        }
        for line in CommandWarnings.lines(command: options.command, reloadSignal: options.reloadSignal) { log(line) }
        if options.listens.isEmpty && listenerFDs.isEmpty {
            for line in CommandWarnings.tcpBinds(command: options.command) { log(line) }
        }
    }

    func run() throws -> Int32 {
        if let code = feed(.started) { return code }
        logProtection()
        while true {
            try reactor.setDeadline([machine.nextDeadline, control.nextDeadline].compactMap { $0 }.min())
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
            var closed: [Int32] = []
            control.dropSilentClients(now: now, closed: &closed)
            unwatchControl(closed)
            guard let d = machine.nextDeadline, d <= now else { return nil }
            return feed(.deadlinePassed)
        case .readable(let token, _):
            if token == Token.socketGuard { guardEvents(); return nil }
            if token == Token.control { acceptControlClients(); return nil }
            if token >= Token.controlClientBase && token < Token.notifyBase {
                return controlReadable(Int32(bitPattern: UInt32(token - Token.controlClientBase)))
            }
            if token >= Token.probeBase { return probeReadable(Int(token - Token.probeBase)) }
            if token >= Token.notifyBase { return notifyReadable(Int(token - Token.notifyBase)) }
            return nil
        }
    }

    /// Hands `event` to the supervisor, performs the actions, then the result events they produced.
    func feed(_ event: ReloadSupervisor.Event) -> Int32? {
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
                let result = spawnGeneration(n)
                if case .spawned(_, let pid) = result { tellReaper(pid, generation: n) }
                results.append(result)
            case .probe(let n):
                startProbe(n)
            case .cancelProbe(let n):
                stopProbe(n)
            case .stopProbing(let n):
                stopProbe(n)
                probes[n] = nil
            case .checkQueue(let n):
                results.append(.queueChecked(generation: n, queued: listenQueue(of: n)))
            case .closeNotify(let n):
                if let c = notifyChannels.removeValue(forKey: n) { reactor.unwatch(c.fd, token: Token.notify(n)) }
            case .publish(let n):
                results.append(.published(generation: n, publish(n)))
            case .putBack(let n):
                putBack(n)
            case .removePrivate(let n):
                publicPath?.removePrivatePath(n)
            case .forget(let n):
                if let pgid = reaperGroups.removeValue(forKey: n) { tellReaper(-pgid, generation: n) }
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
            case .killOrphans(let keeping):
                killOrphans(keeping: Set(keeping))
            case .setGuard(let command):
                setGuard(command)
            case .log(let m):
                log(m)
            case .debug(let m):
                debug(m)
            case .notifySupervisor(let text):
                notifySupervisor(text)
            case .reloadAccepted(let token, let id):
                control.accepted(Int32(token), id: id)
            case .reloadRefused(let token, let reason):
                var closed: [Int32] = []
                control.refused(Int32(token), reason: reason, closed: &closed)
                unwatchControl(closed)
            case .reloadFinished(let outcome):
                var closed: [Int32] = []
                control.finished(id: outcome.id, succeeded: outcome.succeeded, reason: outcome.reason,
                                 milliseconds: outcome.durationNanoseconds / 1_000_000, closed: &closed)
                unwatchControl(closed)
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
            if try notifyFolder.ensureExists() {
                log("hupwatch's folder \(notifyFolder.path) was removed; made it again")
                try control.rebind()
                try reactor.watch(control.fd, token: Token.control)
            }
            channel = try NotifyChannel(folder: notifyFolder, generation: n)
            try reactor.watch(channel.fd, token: Token.notify(n))
        } catch {
            return .spawnFailed(generation: n, reason: "NOTIFY_SOCKET: \(error)", shellCode: ExitCode.environment)
        }
        var env = childEnvironment
        env.append("NOTIFY_SOCKET=" + channel.path)
        env.append("HUPWATCH_GENERATION=\(n)")
        if !listenerFDs.isEmpty { env.append("LISTEN_FDNAMES=" + listenerNames.joined(separator: ":")) }
        var argv = options.command
        var probePath = listenerFDs.isEmpty ? options.probePath : nil
        if let r = rewrite, let pub = publicPath {
            let privatePath = pub.privatePath(n)
            if let problem = pub.clearPrivatePath(n) {
                reactor.unwatch(channel.fd, token: Token.notify(n))
                return .spawnFailed(generation: n, reason: problem, shellCode: ExitCode.environment)
            }
            argv = r.rewriting(argv, to: privatePath)
            // Probes look where this generation binds: its own path.
            probePath = privatePath
        }
        // Taken before the fork, so the probe knows the inode the path had before this generation.
        let probe = probePath.map { ReadinessProbe(path: $0, httpPath: options.httpProbePath) }
        let request = SpawnRequest(executablePath: executable, argv: argv, environment: env,
                                   workingDirectory: options.chdir, listeners: listenerFDs,
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

    /// One record to the group reaper (`-k`): a generation's pgid to kill if hupwatch dies, or its
    /// negation once that group is gone.
    private func tellReaper(_ value: Int32, generation n: Int) {
        guard let fd = groupReaper else { return }
        if value > 0 { reaperGroups[n] = value }
        var v = value
        // 4 bytes to a pipe nobody else writes: atomic, and the reaper reads as fast as generations start.
        let written = withUnsafeBytes(of: &v) { write(fd, $0.baseAddress, 4) }
        if written != 4 { log("group reaper: write: \(errnoText(errno)); -k will not reach generation \(n)'s workers") }
    }

    // MARK: readiness

    private func notifyReadable(_ n: Int) -> Int32? {
        guard let channel = notifyChannels[n], let pid = machine.generation(n)?.pid else { return nil }
        for message in channel.read(generationPID: pid) {
            switch message {
            case .foreign(let sender):
                foreignDatagrams += 1
                let now = monotonicNanoseconds()
                // Rate-limited: a flood of them must not flood the log too.
                if now >= nextForeignLogAt {
                    log("ignored \(foreignDatagrams) datagram(s) on generation \(n)'s NOTIFY_SOCKET from pid \(sender), not one of its processes")
                    foreignDatagrams = 0
                    nextForeignLogAt = now + nanosecondsPerSecond
                }
            case .senderGone(let sender):
                debug("ignored a datagram on generation \(n)'s NOTIFY_SOCKET from pid \(sender), which exited before it could be checked")
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
        if case .follow(let n) = command { announceReadiness(n) }
        guard let g = socketGuard else { return }
        switch command {
        case .follow(let n):
            if options.listenPath != nil || !listenerFDs.isEmpty {
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
            // hupwatch's own listener path, and the public path in rewrite mode, are never rebound by a
            // child, so they stay guarded.
            if options.listenPath == nil && rewrite == nil { g.hold() }
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

    /// Rewrite mode: the public path is pointed at generation n; the guard then keeps it there.
    private func publish(_ n: Int) -> PublishResult {
        guard let pub = publicPath else { return .failed("not in rewrite mode") }
        let result = pub.publish(n)
        if result == .ok {
            socketGuard?.trackCurrentPath()
            announceReadiness(n)
            debug("\(pub.path) now leads to generation \(n) (\(pub.privatePath(n)))")
        }
        return result
    }

    /// A rollback in rewrite mode: the path must still lead to serving generation n.
    private func putBack(_ n: Int) {
        guard let pub = publicPath else { return }
        if let line = pub.putBack(n) { log(line) }
        // Gone missing meanwhile: the guard's link still leads to the serving listener.
        if let line = socketGuard?.restoreIfMissing() { log(line) }
        // Back on n's listener (its successor died after it was published): the guard keeps it there now,
        // not on the dead one.
        if let ino = pub.publishedInode[n], UnixSocket.inode(atPath: pub.path) == ino { socketGuard?.trackCurrentPath() }
    }

    private func listenQueue(of n: Int) -> Int? {
        guard let ino = servedInode[n] ?? publicPath?.publishedInode[n] else { return nil }
        do { return try UnixSocket.listenQueue(fileInode: ino) } catch {
            debug("\(error)")
            return nil
        }
    }

    /// Our children now: the generations, and descendants handed to us (we are their subreaper).
    private func ownChildren() -> [pid_t] {
        let me = getpid()
        guard let text = try? readTextFile("/proc/\(me)/task/\(me)/children", maxBytes: 1 << 20) else { return [] }
        return text.split(separator: " ").compactMap { pid_t($0) }
    }

    /// Descendants handed to us whose generation (HUPWATCH_GENERATION in their environment) is not in
    /// `keeping`: a gone generation's daemonized helpers. SIGKILLed; reaped as unknown pids, at which point
    /// their children are ours and looked at in turn.
    private func killOrphans(keeping: Set<Int>) {
        let mains = Set(machine.generations.map(\.pid))
        for pid in ownChildren() where !mains.contains(pid) {
            guard let n = generationOf(pid), !keeping.contains(n) else { continue }
            log("pid \(pid), left by generation \(n), outlived it: SIGKILL")
            _ = try? sendSignal(SIGKILL, to: pid)
        }
    }

    /// The generation a process was started under, from its environment (nil: unreadable, or none).
    private func generationOf(_ pid: pid_t) -> Int? {
        guard let text = try? readTextFile("/proc/\(pid)/environ", maxBytes: 1 << 20) else { return nil }
        // The last one: ours is appended after whatever an outer hupwatch set.
        let entry = text.split(separator: "\0").last { $0.hasPrefix("HUPWATCH_GENERATION=") }
        return entry.flatMap { Int($0.dropFirst("HUPWATCH_GENERATION=".count)) }
    }

    /// At exit: every descendant handed to us goes with hupwatch, never to pid 1, and so do the ones each
    /// of them hands us as it dies (until none is left, or a bound for a fork bomb).
    private func killLeftoverDescendants() {
        for _ in 0..<64 {
            let pids = ownChildren()
            guard !pids.isEmpty else { return }
            log("stopping \(pids.count) leftover descendant(s) of earlier generations: \(pids.map(String.init).joined(separator: ", "))")
            for pid in pids {
                _ = try? sendSignal(SIGKILL, to: pid)
                var st: Int32 = 0
                while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
            }
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
        // PAGEOUT leaves pages the kernel will not reclaim (shared, or in large folios); dropping the
        // page-table entries takes them out of our resident set whatever the page cache keeps.
        dropCodePageTableEntries()
    }

    private func writeStatus() {
        guard let path = options.statusFile else { return }
        do { try writeFileAtomically(path, statusJSON(machine, now: monotonicNanoseconds(), control: control.path)) } catch {
            log("--status-file: \(error)")
        }
    }

    private func cleanUp() {
        for (path, mine) in ownedListenPaths {
            // Remove the path only while it is still our listener's.
            if UnixSocket.inode(atPath: path) == mine { unlink(path) }
        }
        publicPath?.removeAtExit()
        socketGuard?.removeLink()
        control.closeAll(reason: "hupwatch stopped before the reload completed")
        killLeftoverDescendants()
        // Only while it still names this hupwatch: a file someone rewrote since is theirs.
        if let pidFile = options.pidFile { removePidFileIfOurs(pidFile, pid: getpid()) }
        for lock in locks { lock.release() }
        for n in Array(probes.keys) { stopProbe(n) }
        probes = [:]
        notifyChannels = [:]
        notifyFolder.remove()
    }
}
