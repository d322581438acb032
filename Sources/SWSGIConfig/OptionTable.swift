/// One row of the option table: the command line, the ini file, `SWSGI_*` variables and
/// `--help` are all driven by these rows.
struct OptionSpec: Sendable {
    typealias Setter = @Sendable (inout ServerOptions, String) throws(ValueProblem) -> Void

    /// What giving the option does.
    enum Role: Sendable {
        /// Sets a field; allowed everywhere.
        case setting(Setter)
        /// `--ini FILE`: command line and SWSGI_INI only.
        case ini
        /// `--help` / `--version`: command line only.
        case help, version
        /// `--check`: validate the configuration, print it resolved and exit.
        case check
    }

    let name: String
    let aliases: [String]
    let group: String
    /// Shown after the flag (`N`, `SECONDS`); nil for booleans and `--help`/`--version`.
    let valueName: String?
    /// Shown as `(default: ...)`; nil for `--help`/`--version`.
    let defaultText: String?
    let help: String
    let role: Role
    /// Given alone on the command line (`--log-4xx`) it means true.
    let isBoolean: Bool
    /// Given alone it means "true"; the next argument is its value unless it starts with `--` (`--mule [FILE]`).
    var optionalValue = false

    var names: [String] { [name] + aliases }

    /// `harakiri-graceful-timeout` -> `SWSGI_HARAKIRI_GRACEFUL_TIMEOUT`.
    static func environmentName(_ name: String) -> String {
        "SWSGI_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }
}

private let core = "Core"
private let workers = "Worker management (uWSGI names)"

func option<V>(
    _ group: String, _ name: String, _ valueName: String, _ parser: ValueParser<V>,
    _ keyPath: WritableKeyPath<ServerOptions, V> & Sendable,
    default defaultText: String, _ help: String, aliases: [String] = []
) -> OptionSpec {
    OptionSpec(name: name, aliases: aliases, group: group, valueName: valueName, defaultText: defaultText, help: help,
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o[keyPath: keyPath] = try parser.parse(text)
               },
               isBoolean: false)
}

func option<V>(
    _ group: String, _ name: String, _ valueName: String, _ parser: ValueParser<V>,
    _ keyPath: WritableKeyPath<ServerOptions, V?> & Sendable,
    default defaultText: String, _ help: String, aliases: [String] = []
) -> OptionSpec {
    OptionSpec(name: name, aliases: aliases, group: group, valueName: valueName, defaultText: defaultText, help: help,
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o[keyPath: keyPath] = try parser.parse(text)
               },
               isBoolean: false)
}

func boolean(
    _ group: String, _ name: String, _ keyPath: WritableKeyPath<ServerOptions, Bool> & Sendable, _ help: String,
    defaultText: String = "false"
) -> OptionSpec {
    let parser = ValueParser<Bool>.bool
    return OptionSpec(name: name, aliases: [], group: group, valueName: nil, defaultText: defaultText, help: help,
                      role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                          o[keyPath: keyPath] = try parser.parse(text)
                      },
                      isBoolean: true)
}

/// A repeatable option of typed values: each occurrence appends to the list.
func appending<V>(
    _ group: String, _ name: String, _ valueName: String, _ parser: ValueParser<V>,
    _ keyPath: WritableKeyPath<ServerOptions, [V]> & Sendable, _ help: String
) -> OptionSpec {
    OptionSpec(name: name, aliases: [], group: group, valueName: valueName, defaultText: "none", help: help,
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o[keyPath: keyPath].append(try parser.parse(text))
               },
               isBoolean: false)
}

/// A repeatable option: each occurrence appends to the list.
func appending(
    _ group: String, _ name: String, _ valueName: String,
    _ keyPath: WritableKeyPath<ServerOptions, [String]> & Sendable, _ help: String, aliases: [String] = []
) -> OptionSpec {
    let parser = ValueParser<String>.string()
    return OptionSpec(name: name, aliases: aliases, group: group, valueName: valueName, defaultText: "none", help: help,
                      role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                          o[keyPath: keyPath].append(try parser.parse(text))
                      },
                      isBoolean: false)
}

private let anyCount = 0...Int.max
private let workerCount = 1...4096
private let mibRange = 0...(1 << 40)

/// Every swsgi option, in `--help` order.
let optionTable: [OptionSpec] = [
    // Core
    option(core, "processes", "N", .int(workerCount), \.processes, default: "number of cores",
           "worker processes"),
    appending(core, "socket", "PATH", .unixSocketPath, \.socket,
              "Unix socket to listen on, speaking HTTP (repeatable; see --http-socket, --uwsgi-socket)"),
    option(core, "chmod-socket", "MODE", .octalMode, \.chmodSocket, default: "none",
           "octal mode of the Unix socket, like 660"),
    option(core, "chown-socket", "USER[:GROUP]", .owner, \.chownSocket, default: "none",
           "owner of the Unix socket"),
    appending(core, "http-socket", "HOST:PORT", .listenerHostPort, \.httpSocket,
              "TCP address to listen on, speaking HTTP (:PORT = all addresses, port 0 = a free one; repeatable)"),
    appending(core, "uwsgi-socket", "PATH|HOST:PORT", .uwsgiSocket, \.uwsgiSocket,
              "speak the uwsgi protocol (nginx uwsgi_pass; repeatable); socket = in a [uwsgi] section means this"),
    boolean(core, "enable-proxy-protocol", \.proxyProtocol,
            "HTTP listeners read a PROXY v1/v2 header first (REMOTE_ADDR from it); without one: closed"),
    option(core, "listen", "N", .int(1...65535), \.listenBacklog, default: "1024",
           "listen backlog"),
    option(core, "app", "NAME", .builtinApp, \.app, default: "hello",
           "built-in app: hello, echo, sleep or static:DIR"),
    option(core, "app-library", "PATH", .string(), \.appLibrary, default: "none",
           "shared library with your app, loaded with dlopen"),
    option(core, "buffer-size", "BYTES", .bytes(1...(1 << 30)), \.bufferSizeBytes, default: "8k",
           "largest request head; above it the answer is 431"),
    option(core, "limit-post", "BYTES", .bytes(anyCount), \.limitPostBytes, default: "1m; 0 = unlimited",
           "largest request body; above it the answer is 413"),
    option(core, "limit-request-line", "BYTES", .bytes(1...(1 << 30)), \.limitRequestLineBytes, default: "4094",
           "longest request line; above it the answer is 414"),
    option(core, "limit-request-field-size", "BYTES", .bytes(1...(1 << 30)), \.limitRequestFieldBytes, default: "8190",
           "longest header field; above it the answer is 431"),
    option(core, "limit-request-fields", "N", .int(1...1_000_000), \.limitRequestFields, default: "100",
           "most header fields; above it the answer is 431"),
    option(core, "underscore-headers", "MODE", .underscoreHeaders, \.underscoreHeaders, default: "drop",
           "header fields named with _: drop, refuse (400) or keep"),
    option(core, "header-timeout", "SECONDS", .seconds(positive: true), \.headerTimeoutNanoseconds, default: "10",
           "answer 408 when a request head is not complete in time"),
    option(core, "body-timeout", "SECONDS", .seconds(positive: true), \.bodyTimeoutNanoseconds, default: "60",
           "answer 408 and close when a request body takes longer than this from the first read"),
    option(core, "keepalive-timeout", "SECONDS", .seconds(), \.keepaliveTimeoutNanoseconds, default: "75",
           "close idle keep-alive connections after this (0 = never)"),
    option(core, "worker-reload-mercy", "SECONDS", .seconds(), \.workerReloadMercyNanoseconds, default: "60",
           "how long a reloading worker may finish its requests before it is killed"),
    option(core, "write-timeout", "SECONDS", .seconds(positive: true), \.writeTimeoutNanoseconds, default: "30",
           "close a connection whose client takes no response byte for this long"),
    option(core, "offload-threads", "N", .int(0...1024), \.offloadThreads, default: "0",
           "threads per worker sending file bodies after the head: the worker is free at once",
           aliases: ["offload-thread"]),
    option(core, "pid-file", "PATH", .string(), \.pidFile, default: "none",
           "write the master's pid to this file"),
    boolean(core, "vacuum", \.vacuum,
            "at exit remove the socket files, pid file and master FIFO swsgi made, while still its own",
            defaultText: "true"),
    option(core, "stats", "PATH|HOST:PORT", .string(), \.statsSocket, default: "none",
           "stats server: a Unix socket path, or a TCP address (JSON, HTTP GET, GET /metrics)"),
    boolean(core, "memory-report", \.memoryReport, "add the worker's address space and RSS to each request line (uWSGI's format)"),
    boolean(core, "disable-logging", \.disableLogging, "no request log lines"),
    boolean(core, "log-4xx", \.log4xx, "log 4xx responses even with --disable-logging"),
    boolean(core, "log-5xx", \.log5xx, "log 5xx responses even with --disable-logging"),
    option(core, "procname-prefix", "TEXT", .string(allowEmpty: true), \.procnamePrefix, default: "none",
           "prefix for process titles"),
    option(core, "logto", "FILE", .string(), \.logTo, default: "stderr",
           "append every process's output to FILE (opened once by the master)", aliases: ["logto2"]),
    option(core, "daemonize", "FILE", .string(), \.daemonize, default: "none",
           "detach (the started process exits 0) and log to FILE; refused under hupwatch"),
    boolean(core, "log-reopen", \.logReopen, "reopen the --logto/--daemonize file at each reload (SIGHUP), after logrotate moved it"),
    option(core, "logfile-chmod", "MODE", .octalMode, \.logFileMode, default: "0640",
           "mode of the --logto/--daemonize file"),
    appending(core, "env", "NAME=VALUE", \.env, "set an environment variable for the app, hooks and mules (repeatable)"),
    appending(core, "touch-reload", "PATH", \.touchReload,
              "reload the workers gracefully (as SIGHUP) when PATH is touched or replaced (repeatable)",
              aliases: ["touch-workers-reload", "fs-reload"]),
    appending(core, "touch-chain-reload", "PATH", \.touchChainReload,
              "replace the workers one at a time when PATH is touched (the next once the last one accepts)"),
    appending(core, "static-map", "/MOUNT=DIR", \.staticMaps,
              "answer GET/HEAD under /MOUNT from DIR when the file is there, else the app does (repeatable)"),
    option(core, "master-fifo", "PATH", .string(), \.masterFifo, default: "none",
           "FIFO the master reads commands from: r/w/c reload, q stop, Q stop now, + -, l, s, P"),
    option(core, "umask", "MODE", .octalMode, \.umask, default: "inherited",
           "process umask (octal), set before anything is created"),
    option(core, "uid", "USER", .userOrGroup, \.uid, default: "none",
           "run as this user (name or number) once the listener is bound, before any app code"),
    option(core, "gid", "GROUP", .userOrGroup, \.gid, default: "--uid's group",
           "run as this group (name or number); needed with a numeric --uid that has no passwd entry"),
    OptionSpec(name: "ini", aliases: [], group: core, valueName: "FILE", defaultText: "none",
               help: "read the [swsgi] section of this ini file (command line or SWSGI_INI only)",
               role: .ini, isBoolean: false),
    OptionSpec(name: "check", aliases: [], group: core, valueName: nil, defaultText: nil,
               help: "check the configuration (every problem at once, each with file:line), print it resolved and exit",
               role: .check, isBoolean: true),
    boolean(core, "show-config", \.showConfig, "print the resolved configuration at start-up (uWSGI's --show-config)"),
    OptionSpec(name: "help", aliases: [], group: core, valueName: nil, defaultText: nil,
               help: "print this help and exit", role: .help, isBoolean: true),
    OptionSpec(name: "version", aliases: [], group: core, valueName: nil, defaultText: nil,
               help: "print the version and exit", role: .version, isBoolean: true),

    // Worker management
    option(workers, "harakiri", "SECONDS", .seconds(), \.harakiriNanoseconds, default: "0 = off",
           "kill a worker whose request runs longer than this"),
    option(workers, "harakiri-graceful-timeout", "SECONDS", .seconds(), \.harakiriGracefulTimeoutNanoseconds,
           default: "0 = SIGKILL at once", "send --harakiri-graceful-signal first and SIGKILL after this"),
    option(workers, "harakiri-graceful-signal", "SIGNAL", .gracefulSignal, \.harakiriGracefulSignal, default: "TERM",
           "signal asking a harakiri'd worker to stop (name or number; not KILL or STOP)"),
    option(workers, "harakiri-graceful-queue-threshold", "N", .int(anyCount), \.harakiriGracefulQueueThreshold,
           default: "0 = always fire", "harakiri only while the listen queue holds more than N connections",
           aliases: ["harakiri-queue-threshold"]),
    option(workers, "max-requests", "N", .int(anyCount), \.maxRequests, default: "0 = off",
           "recycle a worker after this many requests"),
    option(workers, "max-requests-delta", "N", .int(anyCount), \.maxRequestsDelta, default: "0",
           "spread --max-requests by up to N per worker"),
    option(workers, "max-worker-lifetime", "SECONDS", .seconds(), \.maxWorkerLifetimeNanoseconds, default: "0 = off",
           "recycle a worker after this long"),
    option(workers, "max-worker-lifetime-delta", "SECONDS", .seconds(), \.maxWorkerLifetimeDeltaNanoseconds,
           default: "0", "spread --max-worker-lifetime by up to this per worker"),
    option(workers, "reload-on-rss", "MIB", .int(mibRange), \.reloadOnRSSMiB, default: "0 = off",
           "gracefully recycle a worker whose RSS is above this many MiB"),
    option(workers, "evil-reload-on-rss", "MIB", .int(mibRange), \.evilReloadOnRSSMiB, default: "0 = off",
           "SIGKILL a worker at or above this many MiB even while busy, as uWSGI (sampled every 250 ms)"),
    option(workers, "cheaper", "N", .int(0...4096), \.cheaper, default: "0 = off",
           "adaptive workers: keep at least N running, up to --processes"),
    option(workers, "cheaper-initial", "N", .int(0...4096), \.cheaperInitial, default: "--cheaper",
           "workers started at boot in cheaper mode"),
    option(workers, "cheaper-step", "N", .int(workerCount), \.cheaperStep, default: "1",
           "workers spawned at a time when busy"),
    option(workers, "cheaper-overload", "SECONDS", .seconds(positive: true), \.cheaperOverloadNanoseconds,
           default: "3", "length of a busyness cycle"),
    option(workers, "cheaper-busyness-min", "PERCENT", .int(0...100), \.cheaperBusynessMin, default: "25",
           "stop a worker when busyness stays below this"),
    option(workers, "cheaper-busyness-max", "PERCENT", .int(0...100), \.cheaperBusynessMax, default: "50",
           "spawn workers when busyness is above this"),
    option(workers, "cheaper-busyness-multiplier", "N", .int(1...1_000_000), \.cheaperBusynessMultiplier,
           default: "10", "idle cycles before a worker is stopped"),
    option(workers, "cheaper-busyness-backlog-alert", "N", .int(1...Int.max), \.cheaperBusynessBacklogAlert,
           default: "33", "spawn workers when the listen queue holds more than N"),
    option(workers, "cheaper-busyness-backlog-step", "N", .int(workerCount), \.cheaperBusynessBacklogStep,
           default: "1", "workers spawned on a backlog alert"),
    option(workers, "cheaper-rss-limit-soft", "BYTES", .bytes(anyCount), \.cheaperRSSLimitSoftBytes,
           default: "0 = off", "spawn no workers while their total RSS is above this"),
    option(workers, "cheaper-rss-limit-hard", "BYTES", .bytes(anyCount), \.cheaperRSSLimitHardBytes,
           default: "0 = off", "stop workers while their total RSS is above this"),
] + staticOptionRows + daemonOptionRows + pythonOptionRows + servicesOptionRows + loggingOptionRows + processOptionRows

/// Every name and alias, to its row.
let optionsByName: [String: OptionSpec] = {
    var byName: [String: OptionSpec] = [:]
    for spec in optionTable {
        for name in spec.names { byName[name] = spec }
    }
    return byName
}()

extension ServerOptions {
    /// `swsgi --help`: every option with its value, default and one line of help.
    public static var helpText: String {
        var lines = [
            "Usage: swsgi [OPTIONS]",
            "",
            "A pre-fork HTTP/1.1 server. Options are read from, lowest to highest precedence: defaults,",
            "the [swsgi] section of --ini FILE, SWSGI_<OPTION> environment variables (dashes as",
            "underscores: SWSGI_HARAKIRI_GRACEFUL_TIMEOUT=5), and the command line (--name VALUE or",
            "--name=VALUE; a boolean given alone means true). Sizes take k/m/g; durations are seconds.",
        ]
        var group = ""
        for spec in optionTable {
            if spec.group != group {
                group = spec.group
                lines += ["", "\(group):"]
            }
            var flag = "  --\(spec.name)"
            if let v = spec.valueName { flag += " \(v)" }
            // Words wrapped to 100 columns; "(default: ...)" and "(also ...)" stay in one piece.
            var words = spec.help.split(separator: " ").map(String.init)
            if !spec.aliases.isEmpty { words.append("(also --" + spec.aliases.joined(separator: ", --") + ")") }
            if let d = spec.defaultText { words.append("(default: \(d))") }
            let column = 40, width = 100
            var line = flag.count < column - 1 ? flag + String(repeating: " ", count: column - flag.count) : ""
            if line.isEmpty { lines.append(flag) }
            var lineHasWords = false
            for word in words {
                if line.isEmpty { line = String(repeating: " ", count: column) }
                if lineHasWords, line.count + 1 + word.count > width {
                    lines.append(line)
                    line = String(repeating: " ", count: column)
                    lineHasWords = false
                }
                line += (lineHasWords ? " " : "") + word
                lineHasWords = true
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
