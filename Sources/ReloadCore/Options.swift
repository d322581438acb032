/// How hupwatch decides that a new generation is ready to take over.
public enum ReadinessMode: Equatable, Sendable {
    /// READY=1 on NOTIFY_SOCKET; else a new listener on the known socket path; else a 1 s warm-up.
    case auto
    /// Waits for READY=1 on the NOTIFY_SOCKET hupwatch provides (sd_notify).
    case notify
    /// A listener with a new inode accepts a connection at the path.
    case socket(path: String)
    /// An HTTP GET of the path over the Unix socket answers 2xx.
    case http(path: String)
    /// The original hupwatch's blind wait.
    case delay(nanoseconds: UInt64)
}

/// What hupwatch does when the serving generation exits on its own.
public enum OnExit: String, Sendable { case exit, restart }

/// hupwatch's command line, parsed. Defaults are the documented ones.
public struct HupwatchOptions: Equatable, Sendable {
    public var command: [String] = []
    public var ready: ReadinessMode = .auto
    public var readyTimeout: UInt64 = 30 * nanosecondsPerSecond
    public var gracefulTimeout: UInt64 = 30 * nanosecondsPerSecond
    public var reloadSignal: Int32 = 15
    public var listenPath: String? = nil
    public var socketMode: UInt32 = 0o660
    /// The path the command binds itself (rebind mode); given or detected from the command line.
    public var socketPath: String? = nil
    /// Where `socketPath` came from, for the start-up line that says which protection is in force.
    public var socketPathSource: SocketPathSource = .flag
    public var guardEnabled = true
    public var onExit: OnExit = .exit
    public var killAtExit = false
    public var chdir: String? = nil
    public var pidFile: String? = nil
    public var statusFile: String? = nil
    public var quiet = false
    public var verbose = false

    public init() {}

    /// The Unix socket readiness probes connect to: the one named by --ready socket:, or the command's.
    /// Never hupwatch's own --listen socket: every generation shares it, so its inode never changes and a
    /// probe could not tell the new generation answered (auto then waits for READY=1 or the warm-up).
    public var probePath: String? {
        if case .socket(let p) = ready { return p }
        return listenPath == nil ? socketPath : nil
    }

    /// The URL path an `http:` probe asks for; nil for the other modes.
    public var httpProbePath: String? {
        if case .http(let p) = ready { return p }
        return nil
    }
}

/// How hupwatch learned the socket path it guards and probes.
public enum SocketPathSource: Equatable, Sendable, CustomStringConvertible {
    /// `--socket PATH`.
    case flag
    /// Found in the command line (`--bind unix:PATH`, `--socket PATH`, ...).
    case commandLine
    /// `--ready socket:PATH`: the command binds it somewhere hupwatch cannot see (a script, a config file).
    case readyProbe

    public var description: String {
        switch self {
        case .flag: return "--socket"
        case .commandLine: return "found in the command line"
        case .readyProbe: return "from --ready socket:"
        }
    }
}

/// What parsing the command line asks for.
public enum ParsedCommandLine: Equatable, Sendable {
    case run(HupwatchOptions)
    case help
    case version
}

/// A bad command line: one line for stderr; hupwatch exits with `ExitCode.usage`.
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension HupwatchOptions {
    /// Parses `hupwatch [OPTIONS] -- COMMAND [ARG...]`. `signalNumber` maps names like TERM to numbers.
    public static func parse(_ args: [String], signalNumber: (String) -> Int32?) throws(UsageError) -> ParsedCommandLine {
        var o = HupwatchOptions()
        var i = 0
        var readyGiven = false
        func value(_ flag: String, _ inline: String?) throws(UsageError) -> String {
            if let inline { return inline }
            i += 1
            guard i < args.count else { throw UsageError("\(flag) needs a value") }
            return args[i]
        }
        func duration(_ flag: String, _ text: String) throws(UsageError) -> UInt64 {
            guard let d = parseDuration(text) else {
                throw UsageError("\(flag): '\(text)' is not a duration (seconds, or with ms/s/m: 30, 1.5, 250ms)")
            }
            return d
        }
        while i < args.count {
            let arg = args[i]
            if arg == "--" { i += 1; break }
            if !arg.hasPrefix("-") || arg == "-" { break }
            var flag = arg
            var inline: String? = nil
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                flag = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            switch flag {
            case "-h", "--help": return .help
            case "--version": return .version
            case "-q", "--quiet": o.quiet = true
            case "-v", "--verbose": o.verbose = true
            case "-k", "--kill-at-exit": o.killAtExit = true
            case "--no-guard": o.guardEnabled = false
            case "--ready":
                o.ready = try parseReadiness(try value(flag, inline))
                readyGiven = true
            case "-w", "--warmup-time":
                o.ready = .delay(nanoseconds: try duration(flag, try value(flag, inline)))
                readyGiven = true
            case "--ready-timeout":
                o.readyTimeout = try duration(flag, try value(flag, inline))
                if o.readyTimeout == 0 { throw UsageError("--ready-timeout must be above 0") }
            case "--graceful-timeout": o.gracefulTimeout = try duration(flag, try value(flag, inline))
            case "--reload-signal":
                let v = try value(flag, inline)
                guard let s = signalNumber(v), s != 9, s != 19 else { throw UsageError("--reload-signal: '\(v)' is not a signal hupwatch can send as a reload") }
                o.reloadSignal = s
            case "--listen": o.listenPath = try socketPath(flag, try value(flag, inline))
            case "--socket": o.socketPath = try socketPath(flag, try value(flag, inline))
            case "--socket-mode":
                let v = try value(flag, inline)
                guard let m = UInt32(v, radix: 8), m <= 0o7777 else { throw UsageError("--socket-mode: '\(v)' is not an octal mode like 0660") }
                o.socketMode = m
            case "--on-exit":
                let v = try value(flag, inline)
                guard let e = OnExit(rawValue: v) else { throw UsageError("--on-exit: '\(v)' is not 'exit' or 'restart'") }
                o.onExit = e
            case "--chdir": o.chdir = try nonEmpty(flag, try value(flag, inline))
            case "--pid-file": o.pidFile = try nonEmpty(flag, try value(flag, inline))
            case "--status-file": o.statusFile = try nonEmpty(flag, try value(flag, inline))
            default: throw UsageError("unknown option \(arg) (see hupwatch --help)")
            }
            if inline != nil, ["-q", "--quiet", "-v", "--verbose", "-k", "--kill-at-exit", "--no-guard"].contains(flag) {
                throw UsageError("\(flag) takes no value")
            }
            i += 1
        }
        o.command = Array(args[i...])
        guard !o.command.isEmpty else { throw UsageError("no command given: hupwatch [OPTIONS] -- COMMAND [ARG...]") }
        guard !o.command[0].isEmpty else { throw UsageError("the command is an empty string") }
        if o.socketPath == nil, o.listenPath == nil, let detected = detectSocketPath(in: o.command) {
            o.socketPath = detected
            o.socketPathSource = .commandLine
        }
        if o.socketPath == nil, o.listenPath == nil, case .socket(let p) = o.ready {
            // The path the probe watches is the path the command serves: guard it too (a script in front
            // of the server hides its flags from hupwatch, but not from the operator who named the path).
            o.socketPath = p
            o.socketPathSource = .readyProbe
        }
        if case .http = o.ready, o.listenPath == nil, o.socketPath == nil {
            throw UsageError("--ready http:PATH needs the Unix socket to ask: give --socket PATH (or a --socket/--bind unix: flag in the command)")
        }
        if let listen = o.listenPath {
            switch o.ready {
            case .socket, .http:
                // Every generation accepts on the one listener, so a probe cannot tell which answered.
                throw UsageError("--ready \(readyGiven ? "socket:/http:" : "") cannot be used with --listen: all generations share the listener \(listen), so a probe cannot tell the new one answered; use notify, auto or delay:SEC")
            default: break
            }
        }
        return .run(o)
    }

    static func parseReadiness(_ text: String) throws(UsageError) -> ReadinessMode {
        if text == "auto" { return .auto }
        if text == "notify" { return .notify }
        if text.hasPrefix("socket:") { return .socket(path: try socketPath("--ready socket:", String(text.dropFirst(7)))) }
        if text.hasPrefix("http:") {
            let p = String(text.dropFirst(5))
            guard p.hasPrefix("/"), !p.contains(" ") else { throw UsageError("--ready http:PATH needs a URL path starting with /, like http:/healthz") }
            return .http(path: p)
        }
        if text.hasPrefix("delay:") {
            guard let d = parseDuration(String(text.dropFirst(6))) else { throw UsageError("--ready delay:SECONDS: '\(text.dropFirst(6))' is not a duration") }
            return .delay(nanoseconds: d)
        }
        throw UsageError("--ready: '\(text)' is not auto, notify, socket:PATH, http:PATH or delay:SECONDS")
    }

    static func socketPath(_ flag: String, _ path: String) throws(UsageError) -> String {
        if path.isEmpty { throw UsageError("\(flag) needs a socket path") }
        if let problem = SocketPath.problem(path) { throw UsageError("\(flag): \(problem)") }
        return path
    }

    static func nonEmpty(_ flag: String, _ v: String) throws(UsageError) -> String {
        if v.isEmpty { throw UsageError("\(flag) needs a value") }
        return v
    }

    /// The Unix socket path a server command binds, from the spellings of swsgi, uWSGI and gunicorn:
    /// `--socket PATH`, `--http-socket PATH`, `-s PATH`, `--bind unix:PATH`, `-b unix:PATH`.
    public static func detectSocketPath(in command: [String]) -> String? {
        var i = 1
        while i < command.count {
            var flag = command[i]
            var v: String? = i + 1 < command.count ? command[i + 1] : nil
            if flag.hasPrefix("--"), let eq = flag.firstIndex(of: "=") {
                v = String(flag[flag.index(after: eq)...])
                flag = String(flag[..<eq])
            }
            if let v {
                switch flag {
                case "--socket", "-s", "--http-socket", "--uwsgi-socket", "--http11-socket":
                    if v.contains("/"), !v.contains(":") { return v }
                case "--bind", "-b":
                    if v.hasPrefix("unix:") { return String(v.dropFirst(5)) }
                default: break
                }
            }
            i += 1
        }
        return nil
    }
}

/// hupwatch's own exit codes; otherwise it exits with its serving generation's status.
public enum ExitCode {
    /// A bad command line.
    public static let usage: Int32 = 2
    /// The environment refused: bad --chdir, socket folder missing, socket path in use, pid file unwritable.
    public static let environment: Int32 = 3
    /// Command not executable / not found, as a shell reports it.
    public static let notExecutable: Int32 = 126
    public static let notFound: Int32 = 127
}
