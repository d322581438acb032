import CGlibcShim
import Glibc
import Posix
import Common
import SWSGIConfig

/// Runs swsgi with `app` (or, when nil, the one `--app` / `--app-library` names) and exits.
/// A user's own server is two lines:
/// ```
/// import SWSGI
/// serve { request in Response(text: "hello from \(request.path)\n") }
/// ```
/// `onHarakiri` runs in the worker when harakiri's graceful signal arrives (see `HarakiriHandler`).
public func serve(onHarakiri: HarakiriHandler? = nil, _ app: Application? = nil) -> Never {
    if let bad = firstNonUTF8Argument(rawCommandLine()) {
        // Swift would repair the bytes into U+FFFD: a path would silently become another.
        writeStderr("swsgi: argument \(bad) is not valid UTF-8; swsgi refuses rather than use a rewritten path")
        exit(ExitCode.usage)
    }
    exit(SWSGIMain.run(arguments: Array(CommandLine.arguments.dropFirst()), app: app, onHarakiri: onHarakiri))
}

/// Starts a hosted app (Python) from the options, before anything is bound; throws to stop swsgi.
public typealias HostLoader = (ServerOptions, _ environment: [String]) throws -> HostedApplication

/// `serve()` for the swsgi executable, which can also host Python WSGI apps through `loader`.
public func serve(hostLoader loader: @escaping HostLoader) -> Never {
    exit(SWSGIMain.run(arguments: Array(CommandLine.arguments.dropFirst()), app: nil, hostLoader: loader))
}

public enum SWSGIMain {
    public static let version = "swsgi \(packageVersion)"
    /// CGI's SERVER_SOFTWARE (product/version, RFC 3875 §4.1.17).
    public static let software = "swsgi/\(packageVersion)"

    /// Parses the configuration, loads the app (before binding anything: an app that cannot load
    /// stops swsgi, never leaves an empty shell answering 500), binds, forks workers and serves.
    public static func run(arguments: [String], app given: Application?, onHarakiri: HarakiriHandler? = nil,
                           hostLoader: HostLoader? = nil) -> Int32 {
        let inherited = environmentSnapshot()
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let options: ServerOptions
        do {
            let world = UwsgiConfigWorld.live(environment: inherited, cores: max(1, cores), readFile: readConfigFile,
                                              runCommand: { ConfigCommand.run($0, environment: inherited) })
            switch try ServerOptions.load(arguments: arguments, environment: inherited, world: world) {
            case .check(let checked, let report):
                writeStdout(report)
                for w in checked.configWarnings { writeStderr("swsgi: warning: \(w)") }
                writeStderr("swsgi: the configuration is valid")
                return ExitCode.success
            case .help:
                writeStdout(ServerOptions.helpText)
                return ExitCode.success
            case .version:
                writeStdout(version)
                return ExitCode.success
            case .run(let o): options = o.withFileLoggerAsLogTo()
            }
            if let text = options.showConfigText { writeStderr(text) }
            for w in options.configWarnings { writeStderr("swsgi: warning: \(w)") }
            if options.daemonize != nil, inherited.contains(where: { $0.hasPrefix("HUPWATCH_GENERATION=") }) {
                writeStderr("swsgi: --daemonize under hupwatch: hupwatch must stay the parent of the server it reloads; remove daemonize (logto = FILE keeps the log file)")
                return ExitCode.usage
            }
            // uWSGI's order: --chdir first, so every relative path (--socket and its temporary name,
            // --logto, --pid-file, --stats, the app) is in that folder, never in the starting one.
            if let dir = options.python.chdir, Glibc.chdir(dir) != 0 {
                writeStderr("swsgi: --chdir \(dir): \(errnoText(errno))")
                return ExitCode.failure
            }
            if let mask = options.umask { Glibc.umask(mode_t(mask)) }
            try LogTarget.apply(options)
            do { try LogRouter.shared.install(options) } catch let e as SyscallError {
                writeStderr("swsgi: logging: \(e)")
                return ExitCode.failure
            }
            for line in StaticMap.problems(options.staticMaps) { writeStderr("swsgi: \(line)") }
        } catch let error as SyscallError {
            writeStderr("swsgi: --logto/--daemonize: \(error)")
            return ExitCode.failure
        } catch {
            writeStderr("swsgi: \(error)")
            return ExitCode.usage
        }
        // --env: hooks, mules and the Python app see these (a later NAME= replaces an inherited one).
        let env = withEnvironment(options.env, over: inherited)
        var bound: [Listener] = []
        var pidFileWritten = false
        // The app's import may ask for them (`uwsgi.numproc`, `Mules.count`).
        currentServices.configure(options)
        do {
            // Until the event loop exists, TERM/INT/QUIT/HUP are recorded rather than fatal (see `startupSignals`).
            let inheritedDispositions = try signalsNotAtDefault(Master.handledSignals)
            try StartupSignals.install()
            // limit-as / max-fd: set by the master before any app code or fork, so every process has them.
            try ProcessLimits.apply(options.process)
            // uWSGI's exec-asap: as soon as possible, before anything is bound or dropped.
            try Hooks.run(.asap, options.hooks, environment: env)
            let drop = try PrivilegeDrop.resolve(options)
            // The stats socket first: a live one at its path stops us before our listener is bound.
            let stats = try options.statsSocket.map { spec in
                try options.statsTCPAddress.map { try StatsServer(tcp: $0) } ?? StatsServer(path: spec, vacuum: options.vacuum)
            }
            // Bound under a temporary name: until `publish()` nothing is at --socket, so an app that
            // cannot load (below) leaves the path as it was, a live predecessor's socket included.
            var listeners = try Listener.openAll(options, environment: env)
            bound = listeners
            if let drop {
                // The unprivileged master renames the sockets into place and removes them at exit.
                for l in listeners where options.chownSocket == nil {
                    if let tmp = l.temporaryPath ?? l.ownedPath { try syscall("chown", tmp) { Glibc.chown(tmp, drop.uid, drop.gid) } }
                }
                if let s = stats, !s.path.isEmpty { try syscall("chown", s.path) { Glibc.chown(s.path, drop.uid, drop.gid) } }
                if options.logging.chown {
                    try LogRouter.shared.setup.chown(uid: drop.uid, gid: drop.gid, logFile: (options.logTo ?? options.daemonize) != nil)
                }
                try drop.apply()
            }
            // App code (hooks, a library's constructors included) runs only now, after the drop.
            try Hooks.run(.preApp, options.hooks, environment: env)
            let app: Application
            var handler = onHarakiri
            var host: HostedApplication? = nil
            if options.python.isConfigured {
                guard let hostLoader else {
                    throw SWSGIError("--wsgi-file/--module: this program does not host Python apps; run the swsgi executable")
                }
                // An app ending the process during its import (exit(), abort()) removes this name on the way out.
                StartupCleanup.set(listeners.compactMap(\.temporaryPath) + [stats?.path].compactMap { $0 }.filter { !$0.isEmpty })
                defer { StartupCleanup.set([]) }
                // Blocked before the import: a thread it starts inherits the mask, so a signal sent to the master
                // waits (pending, then in the master's signalfd) instead of reaching that thread with its
                // default action, which kills the master at HUP, TERM or USR1.
                try SignalSet(Master.handledSignals).block()
                let watch = ImportStopWatch()
                // A process the import forks (multiprocessing) starts with no signal blocked, as the app would run it.
                try ForkChildSignals.unblockAll()
                let loaded: HostedApplication
                let result = Result { try hostLoader(options, env) }
                ForkChildSignals.stop()
                watch?.finish()
                do { loaded = try result.get() } catch {
                    // Python's start-up or the app's import ran out of address space: name the limit that caused it.
                    let mib = options.process.limitAddressSpaceMiB
                    if mib > 0 { throw SWSGIError("\(error) (under --limit-as \(mib) MiB: too low for Python and the app? raise it)") }
                    throw error
                }
                host = loaded
                app = { _ in throw SWSGIError("\(loaded.description) is served through the worker's own application") }
            } else if let given { app = given }
            else if let lib = options.appLibrary { (app, handler) = try AppLibrary.load(lib) }
            else {
                app = try BuiltinApps.named(options.effectiveApp, staticFiles: options.staticFiles)
                if options.effectiveApp == .sleep { handler = BuiltinApps.sleepHarakiriHandler }
            }
            let early = try startupSignals()
            // The app's import ran in this process: the master's signals must be its own again.
            if host != nil { try Master.restoreSignalDispositions(inherited: inheritedDispositions) }
            if let sig = [SIGINT, SIGQUIT, SIGTERM].first(where: { early & (1 << UInt($0)) != 0 }) {
                ServerLog.line("\(SignalName.name(sig)) during start-up: stopped before serving")
                for l in bound { l.vacuum() }
                return ExitCode.success
            }
            if early & (1 << UInt(SIGHUP)) != 0 {
                ServerLog.line("SIGHUP during start-up: nothing to reload yet (the workers start with the app just loaded)")
            }
            try Hooks.run(.postApp, options.hooks, environment: env)
            // Shared memory (caches, locks) is mapped here, before any fork.
            let services = try currentServices.setUpMaster()
            // Each path in turn; a failure leaves those published so far to the vacuum below.
            for i in listeners.indices {
                do { try listeners[i].publish() } catch {
                    bound = listeners
                    throw error
                }
            }
            bound = listeners
            if let p = options.pidFile {
                do { try writeFileSafely(p, "\(getpid())\n") } catch { throw SWSGIError("--pid-file \(p): \(error)") }
                pidFileWritten = true
            }
            // The listener queues connections from here on: the accepting phase.
            try Hooks.run(.accepting, options.hooks, environment: env)
            setProcessTitle(options.processTitle("swsgi master", master: true))
            let master = try Master(settings: options, app: app, harakiriHandler: handler, listeners: listeners, stats: stats,
                                    services: services, environment: env, host: host)
            return master.run()
        } catch {
            if LogRouter.shared.setup.plain { writeStderr("swsgi: \(error)") } else { ServerLog.line("\(error)") }
            // Failing after the bind (the --stats socket, say) must not leave a socket nobody accepts on,
            // or a pid file naming a dead process, behind.
            for l in bound { l.vacuum() }
            if pidFileWritten, options.vacuum, let p = options.pidFile { removePidFileIfOurs(p, pid: getpid()) }
            return ExitCode.failure
        }
    }
}

/// The signals that arrived while swsgi was starting (bits 1 << number). From here they are blocked, so
/// one arriving now waits in the master's signalfd instead of ending the master by its default action:
/// a TERM during a long import used to kill it silently and leave its temporary socket behind.
func startupSignals() throws -> UInt {
    try SignalSet(Master.handledSignals).block()
    return StartupSignals.release() | StartupSignals.takePending()
}

/// `base` with each `NAME=VALUE` of `overrides` replacing that NAME's entry (or added).
func withEnvironment(_ overrides: [String], over base: [String]) -> [String] {
    guard !overrides.isEmpty else { return base }
    func name(_ e: String) -> Substring { e.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? Substring(e) }
    let names = Set(overrides.map(name))
    return base.filter { !names.contains(name($0)) } + overrides
}

/// The config loader's file reader: errors as one line naming the path.
func readConfigFile(_ path: String) throws -> String {
    do { return try readTextFile(path) } catch { throw SWSGIError("\(path): \(errnoText(error.errno))") }
}

