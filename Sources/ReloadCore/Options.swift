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
    /// `--listen`, in order: fds 3, 4, ... in every generation.
    public var listens: [Listen] = []
    public var socketMode: UInt32 = 0o660
    /// The path the command binds itself (rebind mode); given or detected from the command line.
    public var socketPath: String? = nil
    /// Where `socketPath` came from, for the start-up line that says which protection is in force.
    public var socketPathSource: SocketPathSource = .flag
    /// Where the path stands in the command, when it was found there (rewrite mode needs it).
    public var socketArgument: SocketArgument? = nil
    /// Rewrite mode (default where the path is in the command line): each generation binds a private path
    /// beside the public one, which is pointed at it once it is ready. `--no-rewrite` turns it off.
    public var rewriteEnabled = true
    public var guardEnabled = true
    /// Socket paths the command names when it names more than one: hupwatch cannot tell which it serves,
    /// so rewrite mode is off and nothing is guarded unless `--socket` picks one.
    public var ambiguousSocketPaths: [String] = []
    /// `--notify-fd N` (s6's notification-fd): a newline is written there once the first generation is ready.
    public var notifyFD: Int32? = nil
    public var onExit: OnExit = .exit
    public var killAtExit = false
    public var chdir: String? = nil
    public var pidFile: String? = nil
    public var statusFile: String? = nil
    public var quiet = false
    public var verbose = false

    public init() {}

    /// The first Unix socket among `--listen`: the path hupwatch owns and guards.
    public var listenPath: String? {
        for l in listens { if case .unix(let p) = l.address { return p } }
        return nil
    }

    /// Rewrite mode is in force: the path is known from the command line, hupwatch owns no listener.
    public var rewritesSocketArgument: Bool {
        rewriteEnabled && socketArgument != nil && listens.isEmpty
    }

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
    /// `hupwatch reload|status|stop`: talk to a running hupwatch.
    case control(ControlRequest)
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
        if let first = args.first, let verb = ControlRequest.Verb(rawValue: first) {
            return .control(try ControlRequest.parse(verb, args.dropFirst()))
        }
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
            switch parseDurationChecked(text) {
            case .success(let d): return d
            case .failure(.tooLarge): throw UsageError("\(flag): '\(text)' is too large: the maximum is \(maxDurationSeconds) seconds")
            case .failure: throw UsageError("\(flag): '\(text)' is not a duration (seconds, or with ms/s/m: 30, 1.5, 250ms)")
            }
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
            case "--listen":
                let text = try value(flag, inline)
                switch Listen.parse(text, defaultName: "hupwatch") {
                case .success(let l):
                    if o.listens.contains(where: { $0.address == l.address }) { throw UsageError("--listen \(l.address) is given twice") }
                    o.listens.append(l)
                case .failure(let e): throw UsageError("--listen: \(e.message)")
                }
            case "--no-rewrite": o.rewriteEnabled = false
            case "--notify-fd":
                let v = try value(flag, inline)
                guard let n = Int32(v), n >= 3, n < 65536 else { throw UsageError("--notify-fd: '\(v)' is not a file descriptor number (3 or above)") }
                o.notifyFD = n
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
            if inline != nil, ["-q", "--quiet", "-v", "--verbose", "-k", "--kill-at-exit", "--no-guard", "--no-rewrite"].contains(flag) {
                throw UsageError("\(flag) takes no value")
            }
            i += 1
        }
        o.command = Array(args[i...])
        guard !o.command.isEmpty else { throw UsageError("no command given: hupwatch [OPTIONS] -- COMMAND [ARG...]") }
        guard !o.command[0].isEmpty else { throw UsageError("the command is an empty string") }
        if let flag = DaemonizingCommand.flag(in: o.command) {
            throw UsageError("the command daemonizes (\(flag)): hupwatch must stay its parent to reload it; remove \(flag) (write the log with --logto, or let hupwatch's stderr carry it)")
        }
        let found = o.listens.isEmpty ? SocketArgument.findAll(in: o.command) : []
        if found.count == 1 {
            if o.socketPath == nil {
                o.socketPath = found[0].path
                o.socketPathSource = .commandLine
            }
            // Rewriting needs the path hupwatch guards to be the one in the command.
            if o.socketPath == found[0].path { o.socketArgument = found[0] }
        } else if found.count > 1 {
            o.ambiguousSocketPaths = found.map(\.path)
        }
        if o.socketPath == nil, o.listens.isEmpty, case .socket(let p) = o.ready {
            // The path the probe watches is the path the command serves: guard it too (a script in front
            // of the server hides its flags from hupwatch, but not from the operator who named the path).
            o.socketPath = p
            o.socketPathSource = .readyProbe
        }
        if case .http = o.ready, o.listens.isEmpty, o.socketPath == nil {
            throw UsageError("--ready http:PATH needs the Unix socket to ask: give --socket PATH (or a --socket/--bind unix: flag in the command)")
        }
        if let listen = o.listens.first?.address {
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
        if path.hasPrefix("@") {
            throw UsageError("\(flag): \(path) is an abstract socket name; hupwatch can only probe and guard a socket file: give its path")
        }
        return path
    }

    static func nonEmpty(_ flag: String, _ v: String) throws(UsageError) -> String {
        if v.isEmpty { throw UsageError("\(flag) needs a value") }
        return v
    }

    /// The Unix socket path a server command binds (see `SocketArgument.find`).
    public static func detectSocketPath(in command: [String]) -> String? { SocketArgument.find(in: command)?.path }
}

/// hupwatch's own exit codes; otherwise it exits with its serving generation's status.
