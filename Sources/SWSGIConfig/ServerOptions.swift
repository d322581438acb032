import Common
/// swsgi's configuration: pure values built from defaults, an ini file, `SWSGI_*` variables and the
/// command line (see `ServerOptions.load`). No I/O: the caller reads the ini file.


/// Every swsgi option, typed. Defaults are the documented ones; `optionTable` describes them.
public struct ServerOptions: Equatable, Sendable {
    // MARK: Core

    /// Worker processes (`--processes`); defaults to the number of cores.
    public var processes: Int
    /// Unix socket paths speaking HTTP (`--socket`, repeatable).
    public var socket: [String] = []
    /// Mode for the Unix socket, like 0o660 (`--chmod-socket`).
    public var chmodSocket: UInt32? = nil
    /// `USER[:GROUP]` owning the Unix socket (`--chown-socket`), resolved at run time.
    public var chownSocket: String? = nil
    /// TCP listeners speaking HTTP (`--http-socket HOST:PORT`, repeatable).
    public var httpSocket: [HTTPSocketAddress] = []
    /// Listeners speaking the uwsgi protocol, for nginx's `uwsgi_pass` (`--uwsgi-socket`, repeatable).
    public var uwsgiSocket: [UwsgiSocketAddress] = []
    /// HTTP listeners expect a PROXY protocol header (v1 or v2) first on each connection (`--enable-proxy-protocol`).
    public var proxyProtocol: Bool = false
    /// listen(2) backlog (`--listen`).
    public var listenBacklog: Int = 1024
    /// The built-in app (`--app`); nil when not given: `hello` runs unless `appLibrary` is set.
    public var app: BuiltinApp? = nil
    /// Shared library with the user app to dlopen (`--app-library`).
    public var appLibrary: String? = nil
    /// Largest request head accepted; above it the answer is 431 (`--buffer-size`).
    public var bufferSizeBytes: Int = 8192
    /// Longest request line; above it the answer is 414 (`--limit-request-line`, gunicorn's name and default).
    public var limitRequestLineBytes: Int = 4094
    /// Longest header field line; above it the answer is 431 (`--limit-request-field-size`).
    public var limitRequestFieldBytes: Int = 8190
    /// Most header fields; above it the answer is 431 (`--limit-request-fields`).
    public var limitRequestFields: Int = 100
    /// Header fields whose name has `_` (`--underscore-headers`): dropped, refused (400) or kept.
    public var underscoreHeaders: UnderscoreHeaders = .drop
    /// Largest request body accepted, 0 = unlimited; above it the answer is 413 (`--limit-post`).
    /// On by default (nginx's client_max_body_size): defaults bound every per-request resource.
    public var limitPostBytes: Int = 1 << 20
    /// A request head not complete within this gets 408 (`--header-timeout`).
    public var headerTimeoutNanoseconds: UInt64 = 10 * nanosecondsPerSecond
    /// A request body not complete this long after the app starts reading it gets 408 (`--body-timeout`):
    /// a total, not a per-read wait, so a trickling client cannot hold a worker.
    public var bodyTimeoutNanoseconds: UInt64 = 60 * nanosecondsPerSecond
    /// Idle keep-alive connections are closed after this, 0 = never (`--keepalive-timeout`).
    public var keepaliveTimeoutNanoseconds: UInt64 = 75 * nanosecondsPerSecond
    /// How long a reloading worker may take to finish before it is killed (`--worker-reload-mercy`).
    public var workerReloadMercyNanoseconds: UInt64 = 60 * nanosecondsPerSecond
    /// A response write that makes no progress for this long closes the connection (`--write-timeout`;
    /// uWSGI's `socket-timeout` covers writes too).
    public var writeTimeoutNanoseconds: UInt64 = 30 * nanosecondsPerSecond
    /// Threads per worker that send file bodies (static files, wsgi.file_wrapper) after the worker wrote the
    /// head, so the worker is free at once (`--offload-threads`, uWSGI's; 0 = the worker sends them itself).
    public var offloadThreads: Int = 0
    /// File the master writes its pid to (`--pid-file`).
    public var pidFile: String? = nil
    /// At exit the master removes what it created: its Unix socket paths, the pid file, the stats socket
    /// and the master FIFO, each only while it is still its own (`--vacuum`; uWSGI's, there off by default).
    public var vacuum: Bool = true
    /// Adds the worker's memory use to each request line (`--memory-report`).
    public var memoryReport: Bool = false
    /// Stats server (`--stats`): a Unix socket path, or `HOST:PORT` for TCP.
    public var statsSocket: String? = nil
    /// No request log lines (`--disable-logging`).
    public var disableLogging: Bool = false
    /// Log 4xx responses even with `disableLogging` (`--log-4xx`).
    public var log4xx: Bool = false
    /// Log 5xx responses even with `disableLogging` (`--log-5xx`).
    public var log5xx: Bool = false
    /// Prefix for process titles (`--procname-prefix`).
    public var procnamePrefix: String = ""
    /// User (name or number) the master and workers run as once the listener is bound (`--uid`).
    public var uid: String? = nil
    /// Group (name or number) to run as (`--gid`); defaults to the --uid user's primary group.
    public var gid: String? = nil
    /// File the master opens and makes stdout and stderr of every process (`--logto`, uWSGI's).
    public var logTo: String? = nil
    /// Reopen the log file at each reload (SIGHUP, touch-reload), for logrotate (`--log-reopen`).
    public var logReopen: Bool = false
    /// Detach (new session, the started process exits 0) and log to this file (`--daemonize`).
    public var daemonize: String? = nil
    /// Mode of the log file (`--logfile-chmod`, octal).
    public var logFileMode: UInt32? = nil
    /// Environment variables set for the app, `NAME=VALUE`, in order (`--env`, repeatable).
    public var env: [String] = []
    /// Files (or directories) whose change reloads the workers gracefully, as SIGHUP (`--touch-reload`).
    public var touchReload: [String] = []
    /// Files (or directories) whose change replaces the workers one at a time (`--touch-chain-reload`).
    public var touchChainReload: [String] = []
    /// `/MOUNT=DIR`: files served before the app (`--static-map`, repeatable).
    public var staticMaps: [String] = []
    /// Index files, Expires, gzip variants, safe paths and skipped extensions for static files.
    public var staticFiles = StaticFileOptions()
    /// Commands the master runs beside the server (`--attach-daemon`, `--attach-daemon2`).
    public var daemons: [DaemonOptions] = []
    /// Commands the master runs at matching minutes (`--cron`, `--unique-cron`).
    public var cronCommands: [CronCommandOptions] = []
    /// uWSGI's master FIFO: one-letter commands written to this path (`--master-fifo`).
    public var masterFifo: String? = nil
    /// The process umask, octal (`--umask`).
    public var umask: UInt32? = nil
    /// The TCP address `statsSocket` names, when it is `HOST:PORT` rather than a path.
    public var statsTCPAddress: HTTPSocketAddress? {
        guard let s = statsSocket, !s.contains("/"), s.contains(":") else { return nil }
        return try? ValueParser<HTTPSocketAddress>.hostPort.parse(s)
    }
    /// Print the resolved configuration at start-up (`--show-config`).
    public var showConfig: Bool = false
    /// What `--show-config` prints: set by `load`, nil otherwise.
    public var showConfigText: String? = nil
    /// Lines to print at start-up (and with `--check`): a `[uwsgi]` value read as uWSGI reads it
    /// (`processes = 1a` is 1). Set by `load`.
    public var configWarnings: [String] = []

    // MARK: Worker management (uWSGI names)

    /// A request running longer than this gets its worker killed, 0 = off (`--harakiri`).
    public var harakiriNanoseconds: UInt64 = 0
    /// Grace between the graceful signal and SIGKILL, 0 = SIGKILL at once (`--harakiri-graceful-timeout`).
    public var harakiriGracefulTimeoutNanoseconds: UInt64 = 0
    /// Signal sent first when `harakiriGracefulTimeoutNanoseconds` > 0 (`--harakiri-graceful-signal`).
    public var harakiriGracefulSignal: Int32 = 15
    /// Harakiri only while the listen queue holds more than this many, 0 = always (`--harakiri-graceful-queue-threshold`).
    public var harakiriGracefulQueueThreshold: Int = 0
    /// Recycle a worker after this many requests, 0 = off (`--max-requests`).
    public var maxRequests: Int = 0
    /// Per-worker spread added to `maxRequests` (`--max-requests-delta`).
    public var maxRequestsDelta: Int = 0
    /// Recycle a worker after this long, 0 = off (`--max-worker-lifetime`).
    public var maxWorkerLifetimeNanoseconds: UInt64 = 0
    /// Per-worker spread added to the lifetime (`--max-worker-lifetime-delta`).
    public var maxWorkerLifetimeDeltaNanoseconds: UInt64 = 0
    /// Gracefully recycle a worker above this RSS in MiB, 0 = off (`--reload-on-rss`).
    public var reloadOnRSSMiB: Int = 0
    /// Kill a worker at once above this RSS in MiB, 0 = off (`--evil-reload-on-rss`).
    public var evilReloadOnRSSMiB: Int = 0
    /// Minimum workers kept by the busyness algorithm, 0 = cheaper mode off (`--cheaper`).
    public var cheaper: Int = 0
    /// Workers started at boot in cheaper mode; nil = `cheaper` (`--cheaper-initial`).
    public var cheaperInitial: Int? = nil
    /// Workers spawned at a time when busy (`--cheaper-step`).
    public var cheaperStep: Int = 1
    /// Length of a busyness cycle (`--cheaper-overload`).
    public var cheaperOverloadNanoseconds: UInt64 = 3 * nanosecondsPerSecond
    /// Below this busyness percent a worker is stopped (`--cheaper-busyness-min`).
    public var cheaperBusynessMin: Int = 25
    /// Above this busyness percent workers are spawned (`--cheaper-busyness-max`).
    public var cheaperBusynessMax: Int = 50
    /// Idle cycles before a worker is stopped (`--cheaper-busyness-multiplier`).
    public var cheaperBusynessMultiplier: Int = 10
    /// Listen queue length that spawns workers regardless of busyness (`--cheaper-busyness-backlog-alert`).
    public var cheaperBusynessBacklogAlert: Int = 33
    /// Workers spawned on a backlog alert (`--cheaper-busyness-backlog-step`).
    public var cheaperBusynessBacklogStep: Int = 1
    /// No workers spawned while total RSS is above this, 0 = off (`--cheaper-rss-limit-soft`).
    public var cheaperRSSLimitSoftBytes: Int = 0
    /// Workers stopped while total RSS is above this, 0 = off (`--cheaper-rss-limit-hard`).
    public var cheaperRSSLimitHardBytes: Int = 0

    // MARK: Process (ProcessOptions.swift)

    /// Resource limits, CPU pinning, address-space recycling and process titles.
    public var process = ProcessOptions()

    // MARK: Python

    /// The Python WSGI app, when there is one (`--wsgi-file`, `--module` and friends).
    public var python = PythonAppOptions()

    // MARK: Services (issue 13; see ServicesOptions.swift)

    /// Shared caches (`--cache2`, repeatable).
    public var caches: [CacheOptions] = []
    /// User locks besides lock 0 (`--locks`).
    public var locks: Int = 0
    /// Mule processes (`--mule`, repeatable).
    public var mules: [MuleOptions] = []
    /// uWSGI's logging options: loggers, routes, encoders, rotation, the request line (LoggingOptionTable).
    public var logging = LoggingOptions()
    /// `--hook-PHASE` / `--exec-PHASE`, in the order given.
    public var hooks: [Hook] = []

    /// The defaults, with one worker per core (at least one).
    public init(cores: Int) {
        processes = max(1, cores)
    }

    /// A listener was configured; false means systemd's LISTEN_FDS must supply one at run time.
    public var hasExplicitListener: Bool { !listeners.isEmpty }

    /// Every configured listener with its protocol: the `--socket` paths, the `--http-socket` addresses,
    /// then the `--uwsgi-socket` ones, each list in the order given.
    public var listeners: [ListenerSpec] {
        socket.map { ListenerSpec(address: .unix($0), uwsgiProtocol: false) }
            + httpSocket.map { ListenerSpec(address: .tcp($0), uwsgiProtocol: false) }
            + uwsgiSocket.map { ListenerSpec(address: $0, uwsgiProtocol: true) }
    }

    /// The app that runs when `appLibrary` is not set.
    public var effectiveApp: BuiltinApp { app ?? .hello }

    /// `cheaperInitial`, or `cheaper` when not given.
    public var effectiveCheaperInitial: Int { cheaperInitial ?? cheaper }
}

/// A TCP address for `--http-socket`.
public struct HTTPSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// Host name or IP address; empty = all addresses.
    public var host: String
    /// 1-65535.
    public var port: UInt16
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
    /// `HOST:PORT`, with IPv6 hosts in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where `--uwsgi-socket` listens: a Unix socket path or a TCP address.
public enum UwsgiSocketAddress: Hashable, Sendable, CustomStringConvertible {
    case unix(String)
    case tcp(HTTPSocketAddress)
    public var description: String {
        switch self {
        case .unix(let p): p
        case .tcp(let a): a.description
        }
    }

    /// What two spellings of one address share: a Unix path without `.` parts and doubled slashes
    /// (`./a.sock` is `a.sock`), a TCP host with `localhost` and the every-address spellings folded.
    /// Two listeners with one key would bind the same socket: the second fails half-way through start-up.
    public var bindKey: String {
        switch self {
        case .unix(let p):
            let parts = p.split(separator: "/").filter { $0 != "." }
            return "unix:" + (p.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
        case .tcp(let a):
            let host = a.host == "localhost" ? "127.0.0.1" : (a.host == "0.0.0.0" ? "" : a.host)
            return "tcp:\(host):\(a.port)"
        }
    }
}

/// One configured listener: where it listens and the protocol its connections speak.
public struct ListenerSpec: Equatable, Sendable, CustomStringConvertible {
    public var address: UwsgiSocketAddress
    /// uwsgi (nginx's uwsgi_pass) rather than HTTP.
    public var uwsgiProtocol: Bool
    public init(address: UwsgiSocketAddress, uwsgiProtocol: Bool) {
        self.address = address
        self.uwsgiProtocol = uwsgiProtocol
    }
    /// The flag that configures it, for messages.
    public var flag: String {
        if uwsgiProtocol { return "--uwsgi-socket" }
        if case .unix = address { return "--socket" }
        return "--http-socket"
    }
    /// `http:127.0.0.1:8000`, `uwsgi:/run/app.sock`.
    public var description: String { (uwsgiProtocol ? "uwsgi:" : "http:") + address.description }
}

/// The apps built into swsgi (`--app`).
public enum BuiltinApp: Equatable, Sendable, CustomStringConvertible {
    case hello
    case echo
    case sleep
    /// Serves files under the directory.
    case staticFiles(directory: String)
    /// The spelling `--app` takes.
    public var description: String {
        switch self {
        case .hello: "hello"
        case .echo: "echo"
        case .sleep: "sleep"
        case .staticFiles(let d): "static:\(d)"
        }
    }
}

/// What loading the configuration asks for.
public enum LoadResult: Equatable, Sendable {
    case run(ServerOptions)
    /// `--check`: the configuration is valid; `report` is its resolved form, one option a line.
    case check(ServerOptions, report: String)
    /// `--help`: print `ServerOptions.helpText`.
    case help
    /// `--version`.
    case version
}

/// A bad configuration: one line naming its source, e.g. `app.ini:12: unknown option 'proceses' (did you mean 'processes'?)`.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `--underscore-headers`: what happens to a header field named with `_` (ambiguous once mapped to
/// CGI/WSGI `HTTP_*` variables, where `Transfer_Encoding` and `Transfer-Encoding` meet).
public enum UnderscoreHeaders: String, Equatable, Sendable {
    case drop, refuse, keep
}
