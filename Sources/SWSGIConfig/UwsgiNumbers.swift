/// How uWSGI reads a number from a config: `uwsgi_opt_set_int` is `strtol(value, &end, 10)` (with a
/// `[WARNING] non-numeric value` line when text is left over), `_64bit`/`_16bit` are `strtoul`,
/// `_rawint` is `atoi`. So `processes = 1a` is 1, `processes = 2*2` is 2, `memory-report = true` is 0
/// (off) and an empty value is 0. swsgi reads a `[uwsgi]` section's numbers the same way and prints
/// one warning per value that was not a plain number, saying what it was read as.

/// The keys of core/uwsgi.c and the python, http, corerouter and cheaper_busyness plugins whose value
/// uWSGI reads with strtol, strtoul or atoi (`grep -E 'uwsgi_opt_set_(int|64bit|16bit|rawint)\b'`).
/// `harakiri-graceful-signal` is left out: swsgi also takes signal names there (`TERM`), which uWSGI
/// would read as 0, not a signal at all.
let uwsgiIntegerKeys: Set<String> = [
    // gevent's setup function (plugins/gevent) reads its value with uwsgi_opt_set_int.
    "gevent",
    "alarm-freq", "alarm-msg-size", "async", "backtrace-depth", "body-read-warning", "buffer-size", "cache",
    "cache-blocksize", "cache-expire-freq", "cache-store-sync", "cheaper", "cheaper-idle", "cheaper-initial",
    "cheaper-overload", "cheaper-rss-limit-hard", "cheaper-rss-limit-soft", "cheaper-step", "check-interval",
    "chunked-input-limit", "chunked-input-timeout", "cpu-affinity", "cron-harakiri", "emperor-broodlord",
    "emperor-curse-tolerance", "emperor-freq", "emperor-max-throttle", "emperor-required-heartbeat",
    "emperor-throttle", "fastcgi-modifier1", "fastcgi-modifier2", "forkbomb-delay", "harakiri",
    "harakiri-graceful-timeout", "harakiri-queue-threshold", "heartbeat", "http-buffer-size",
    "http-connect-timeout", "http-events", "http-gracetime", "http-harakiri", "http-headers-timeout",
    "http-keepalive", "http-manage-expect", "http-modifier1", "http-modifier2", "http-post-buffering",
    "http-processes", "http-socket-modifier1", "http-socket-modifier2", "http-timeout", "http-workers",
    "https-socket-modifier1", "https-socket-modifier2", "idle", "ksm", "legion-death-on-lord-error", "legion-freq",
    "legion-scroll-list-max-size", "legion-scroll-max-size", "legion-skew-tolerance", "legion-tolerance",
    "limit-nproc", "limit-post", "listen", "locks", "log-big", "log-master-bufsize", "log-maxsize", "log-slow",
    "max-apps", "max-fd", "max-requests", "max-requests-delta", "max-worker-lifetime", "max-worker-lifetime-delta",
    "mem-collector-freq", "memory-report", "min-worker-lifetime", "mule-harakiri", "mule-msg-recv-size",
    "mule-msg-size", "mule-reload-mercy", "multicast-loop", "multicast-ttl", "offload-thread", "offload-threads",
    "optimize", "post-buffering", "post-buffering-bufsize", "prio", "processes", "py-auto-reload", "py-autoreload",
    "python-auto-reload", "python-autoreload", "queue", "queue-blocksize", "queue-store-sync", "raw-modifier1",
    "raw-modifier2", "reload-mercy", "response-headers-limit", "rpc-max", "scgi-modifier1", "scgi-modifier2",
    "signal-bufsize", "signals-bufsize", "so-send-timeout", "so-write-timeout", "socket-rcvbuf",
    "socket-send-timeout", "socket-sndbuf", "socket-timeout", "socket-write-timeout", "spooler-freq",
    "spooler-frequency", "spooler-harakiri", "spooler-max-tasks", "spooler-processes", "ssl-session-timeout",
    "ssl-sessions-timeout", "ssl-verify-depth", "static-cache-paths", "stats-pusher-default-freq",
    "stats-pushers-default-freq", "subscribe-freq", "subscription-tolerance", "subscription-tolerance-inactive",
    "subscriptions-sign-check-tolerance", "tcp-fast-open", "tcp-fastopen", "thread-stack-size", "thread-stacksize",
    "threads", "threads-stack-size", "threads-stacksize", "vassal-sos", "vassal-sos-backlog", "wait-for-fs-timeout",
    "wait-for-iface-timeout", "wait-for-interface-timeout", "wait-for-socket-timeout", "wait-iface-timeout",
    "wait-interface-timeout", "websocket-max-size", "websocket-ping-freq", "websocket-pong-tolerance",
    "websockets-max-size", "websockets-ping-freq", "websockets-pong-tolerance", "weight", "worker-reload-mercy",
    "workers", "write-errors-tolerance",
]

/// The integer keys uWSGI reads with uwsgi_opt_set_int (gevent's setup calls it too): strtol's long stored
/// in an int, and a negative result ends uWSGI ("invalid value for option ...: must be > 0", exit 1).
let uwsgiSetIntKeys: Set<String> = [
    "alarm-freq", "async", "backtrace-depth", "cache-expire-freq", "cache-store-sync", "cheaper",
    "cheaper-idle", "cheaper-initial", "cheaper-step", "check-interval", "chunked-input-timeout",
    "cpu-affinity", "cron-harakiri", "emperor-broodlord", "emperor-curse-tolerance", "emperor-freq",
    "emperor-max-throttle", "emperor-required-heartbeat", "emperor-throttle", "forkbomb-delay", "gevent",
    "harakiri", "harakiri-graceful-timeout", "harakiri-queue-threshold", "heartbeat", "http-connect-timeout",
    "http-events", "http-gracetime", "http-harakiri", "http-headers-timeout", "http-keepalive",
    "http-modifier1", "http-modifier2", "http-processes", "http-timeout", "http-workers", "idle", "ksm",
    "legion-death-on-lord-error", "legion-freq", "legion-skew-tolerance", "legion-tolerance", "limit-nproc",
    "listen", "locks", "log-slow", "max-apps", "max-fd", "max-worker-lifetime-delta", "mem-collector-freq",
    "memory-report", "mule-harakiri", "mule-msg-recv-size", "mule-msg-size", "mule-reload-mercy",
    "multicast-loop", "multicast-ttl", "offload-thread", "offload-threads", "optimize", "processes",
    "py-auto-reload", "py-autoreload", "python-auto-reload", "python-autoreload", "queue", "queue-blocksize",
    "queue-store-sync", "reload-mercy", "response-headers-limit", "signal-bufsize", "signals-bufsize",
    "so-send-timeout", "so-write-timeout", "socket-send-timeout", "socket-timeout", "socket-write-timeout",
    "spooler-freq", "spooler-frequency", "spooler-harakiri", "spooler-max-tasks", "spooler-processes",
    "ssl-session-timeout", "ssl-sessions-timeout", "ssl-verify-depth", "static-cache-paths",
    "stats-pusher-default-freq", "stats-pushers-default-freq", "subscribe-freq", "subscription-tolerance",
    "subscription-tolerance-inactive", "subscriptions-sign-check-tolerance", "tcp-fast-open", "tcp-fastopen",
    "thread-stack-size", "thread-stacksize", "threads", "threads-stack-size", "threads-stacksize", "vassal-sos",
    "vassal-sos-backlog", "wait-for-fs-timeout", "wait-for-iface-timeout", "wait-for-interface-timeout",
    "wait-for-socket-timeout", "wait-iface-timeout", "wait-interface-timeout", "websocket-ping-freq",
    "websocket-pong-tolerance", "websockets-ping-freq", "websockets-pong-tolerance", "worker-reload-mercy",
    "workers",
]

/// Keys uWSGI reads with `uwsgi_opt_set_megabytes`: strtoul of the MiB, or atof when the value has a `.`.
let uwsgiMegabyteKeys: Set<String> = [
    "evil-reload-on-as", "evil-reload-on-rss", "limit-as", "reload-on-as", "reload-on-pss", "reload-on-rss", "reload-on-uss",
]

/// Suffixes swsgi's own parsers understand as units (`64k`, `250ms`, `2m`): uWSGI reads only the digits
/// before them, so such a value means two different numbers and is refused rather than guessed.
private let unitSuffixes: Set<String> = ["k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib", "ms", "min", "h"]

/// What `strtol(text, &end, 10)` returns: leading blanks, an optional sign, the decimal digits (0 when
/// there are none), clamped to Int's range; and the text after the number.
func cLeadingInteger(_ text: String) -> (value: Int, rest: Substring) {
    var rest = Substring(text).drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
    var negative = false
    if let sign = rest.first, sign == "+" || sign == "-" {
        let afterSign = rest.dropFirst()
        guard let d = afterSign.first, d.isASCII, d.isNumber else { return (0, Substring(text)) }
        negative = sign == "-"
        rest = afterSign
    }
    let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
    guard !digits.isEmpty else { return (0, Substring(text)) }
    var value = 0
    for d in digits.utf8 {
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(Int(d - 0x30))
        value = o1 || o2 ? Int.max : s
    }
    return (negative ? -value : value, rest.dropFirst(digits.count))
}

/// The value a `[uwsgi]` key's number is read as, and the warning to print when that is not the text
/// as written; nil when the key is not a number in uWSGI or the text is a plain number already.
/// Throws when uWSGI's reading and the text's evident meaning part (`buffer-size = 64k` is 64 bytes).
func uwsgiNumberReading(key: String, value: String) throws(ValueProblem) -> (value: String, warning: String)? {
    let megabytes = uwsgiMegabyteKeys.contains(key)
    guard megabytes || uwsgiIntegerKeys.contains(key) else { return nil }
    // A fraction of a MiB is uWSGI's atof form: swsgi's own parser decides on it.
    if megabytes && value.contains(".") { return nil }
    let (n, rest) = cLeadingInteger(value)
    // What uWSGI refuses (a negative count) or cannot hold (beyond an int) is refused here too, whatever
    // swsgi makes of the key (a count of threads, a no-op, a router setting it has no router for).
    if uwsgiSetIntKeys.contains(key), n < 0 || n > Int(Int32.max) {
        throw ValueProblem(n < 0
            ? "\(quoted(value)) is negative: uWSGI refuses it (\"invalid value for option: must be > 0\", exit 1); give 0 or more"
            : "\(quoted(value)) is beyond uWSGI's int (\(Int32.max)) for this key: give a smaller number")
    }
    if rest.isEmpty, !value.isEmpty, value.first != " " { return nil }
    let suffix = rest.lowercased()
    // `reload-on-rss = 300mb` is 300 MiB in both readings.
    let agrees = megabytes && ["m", "mb", "mib"].contains(suffix)
    if rest.count < value.count, unitSuffixes.contains(suffix), !agrees {
        throw ValueProblem("\(quoted(value)): uWSGI reads only the leading digits (\(n)) and takes no unit; write the whole number\(megabytes ? " of MiB" : "")")
    }
    let why = value.isEmpty ? "empty" : "not a plain number"
    return (String(n), "\(key) = \(quoted(value)) is \(why): read as \(n), as uWSGI reads it (strtol)")
}

/// The `[uwsgi]` keys that take a listener address.
let uwsgiListenerKeys: Set<String> = ["socket", "uwsgi-socket", "http", "http-socket", "http11-socket"]

/// A TCP listener's port as uWSGI reads it (`atoi` after the last colon, core/socket.c): `localhost:8080;`
/// is port 8080, `: 5000` is port 5000 on every address, and a port with no leading digits
/// (`0.0.0.0:$PORT`, `127.0.0.1:<Port>`: placeholders uWSGI does not expand) is 0, a free port the
/// kernel picks (swsgi's log names it). nil when the value is already plain, a Unix path, has no colon,
/// or a number out of range (then swsgi's own parser says what is wrong).
func uwsgiPortReading(key: String, value: String) -> (value: String, warning: String)? {
    guard uwsgiListenerKeys.contains(key), !value.contains("/"), let colon = value.lastIndex(of: ":") else { return nil }
    let host = value[..<colon], portText = String(value[value.index(after: colon)...])
    // An empty port (`host:`) and a bracket-less IPv6 address are typos, not placeholders.
    guard !portText.isEmpty, !host.contains(":") || host.hasPrefix("[") else { return nil }
    let (port, rest) = cLeadingInteger(portText)
    guard port >= 0, port <= 65535, !(rest.isEmpty && portText.first?.isNumber == true) else { return nil }
    let read = "\(host):\(port)"
    if port == 0 {
        return (read, "\(key) = \(quoted(value)): the port \(quoted(portText)) is not a number: read as 0 (\(quoted(read))), as uWSGI reads it (atoi), "
                + "so the kernel picks a free port (the 'listening on' line names it); uWSGI expands $(VAR), not $VAR")
    }
    return (read, "\(key) = \(quoted(value)): port read as \(port) (\(quoted(read))), as uWSGI reads it (atoi)")
}
