/// The option-table rows of uWSGI's logging options (core/logging.c; names as uWSGI spells them).
private let logging = "Logging (uWSGI names)"

private func row(_ name: String, _ valueName: String?, _ defaultText: String, _ help: String, aliases: [String] = [],
                 boolean: Bool = false, optionalValue: Bool = false,
                 _ set: @escaping @Sendable (inout LoggingOptions, String) throws(ValueProblem) -> Void) -> OptionSpec {
    var spec = OptionSpec(name: name, aliases: aliases, group: logging, valueName: valueName, defaultText: defaultText, help: help,
                          role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in try set(&o.logging, text) },
                          isBoolean: boolean)
    spec.optionalValue = optionalValue
    return spec
}

private func flag(_ name: String, _ help: String, aliases: [String] = [],
                  _ keyPath: WritableKeyPath<LoggingOptions, Bool> & Sendable) -> OptionSpec {
    row(name, nil, "false", help, aliases: aliases, boolean: true) { o, t throws(ValueProblem) in
        o[keyPath: keyPath] = try ValueParser<Bool>.bool.parse(t)
    }
}

/// Every name `--log-format` knows (core/logging.c's logchunks, `var.NAME`, and the `json_*` chunks of
/// the escape_json plugin configs load for JSON lines).
public let requestLogVariables: Set<String> = [
    "uri", "method", "user", "addr", "host", "proto", "uagent", "referer", "status", "rsize", "hsize", "size", "cl",
    "micros", "msecs", "secs", "tmsecs", "tmicros", "time", "ltime", "ftime", "ctime", "epoch", "pid", "wid",
    "switches", "vars", "core", "vsz", "rss", "vszM", "rssM", "pktsize", "modifier1", "modifier2", "headers",
    "werr", "rerr", "ioerr", "note",
    "json_uri", "json_host", "json_referer", "json_uagent", "json_method", "json_user", "json_addr",
]

func checkRequestLogFormat(_ text: String) throws(ValueProblem) {
    _ = try LogTemplate.parts(text, syntax: .percent) { name throws(ValueProblem) -> Bool in
        if requestLogVariables.contains(name) || (name.hasPrefix("var.") && name.count > 4) { return true }
        if name.hasPrefix("metric.") { throw ValueProblem("\(quoted(text)): %(\(name)): swsgi has no metrics subsystem; use --stats") }
        throw ValueProblem("\(quoted(text)): unknown variable %(\(name)) (uWSGI would take it as a logvar set by uwsgi.set_logvar(), which swsgi does not have)")
    }
}

let loggingOptionRows: [OptionSpec] = [
    row("log-format", "TEMPLATE", "none", "the request line, of uWSGI variables: %(method) %(uri) %(status) %(addr) %(var.NAME)...",
        aliases: ["logformat"]) { o, t throws(ValueProblem) in
        try checkRequestLogFormat(t)
        o.format = t.isEmpty ? nil : t
    },
    row("logger", "[ID ]KIND[:ARG]", "stderr",
        "where server lines go (repeatable): stdio, file:PATH, fd:N, syslog[:ID], rsyslog:ADDR; ID = named",
        aliases: ["worker-logger"]) { o, t throws(ValueProblem) in
        o.loggers.append(try LoggerSpec.parse(t))
    },
    row("req-logger", "[ID ]KIND[:ARG]", "the server's log", "where request lines go (repeatable; kinds as --logger)",
        aliases: ["logger-req", "worker-logger-req"]) { o, t throws(ValueProblem) in
        o.requestLoggers.append(try LoggerSpec.parse(t))
    },
    row("log-route", "ID REGEX", "none", "a server line matching REGEX goes to the logger named ID only (repeatable)") { o, t throws(ValueProblem) in
        o.routes.append(try LogRouteSpec.parse(t))
    },
    row("log-req-route", "ID REGEX", "none", "a request line matching REGEX goes to the --logger named ID only") { o, t throws(ValueProblem) in
        o.requestRoutes.append(try LogRouteSpec.parse(t))
    },
    row("log-encoder", "NAME[:ID] [ARGS]", "none",
        "server line encoders, in order: prefix T, suffix T, nl, format TEMPLATE, json [TEMPLATE]", aliases: ["worker-log-encoder"]) { o, t throws(ValueProblem) in
        o.encoders.append(try LogEncoderStep.parse(t))
    },
    row("log-req-encoder", "NAME[:ID] [ARGS]", "none", "request line encoders (for --req-logger), as --log-encoder", aliases: ["worker-log-req-encoder"]) { o, t throws(ValueProblem) in
        o.requestEncoders.append(try LogEncoderStep.parse(t))
    },
    row("log-maxsize", "BYTES", "0 = never", "rotate the --logto/--daemonize file once it passes this size") { o, t throws(ValueProblem) in
        o.maxSize = UInt64(try ValueParser<Int>.bytes(0...Int.max).parse(t))
    },
    row("log-backupname", "PATH", "LOG.UNIXTIME", "the name a rotated log file gets (replaced at each rotation)") { o, t throws(ValueProblem) in
        guard !t.isEmpty, !t.utf8.contains(0) else { throw ValueProblem("\(quoted(t)) is not a file path") }
        o.backupName = t
    },
    row("log-date", "[STRFTIME]", "ISO 8601 UTC", "start server lines with the local date (ctime form) or this strftime format, then ' - '",
        aliases: ["logdate", "log-prefix"], optionalValue: true) { o, t throws(ValueProblem) in
        // `--log-date` alone (or true) means the ctime date; uWSGI takes any other value as a format.
        if ["false", "no", "off", "0"].contains(t.lowercased()) { o.date = nil; return }
        o.date = LogDate.parse(t)
    },
    flag("log-truncate", "empty the --logto file at start-up", \.truncate),
    row("log-drain", "REGEX", "none", "drop the server's lines matching REGEX (repeatable)") { o, t throws(ValueProblem) in
        o.drains.append(try LinePattern(t))
    },
    row("log-filter", "REGEX", "none", "keep only the server's lines matching one such REGEX (repeatable)") { o, t throws(ValueProblem) in
        o.filters.append(try LinePattern(t))
    },
    row("log-syslog", "[IDENT]", "none", "log to syslog (as --logger syslog:IDENT)", optionalValue: true) { o, t throws(ValueProblem) in
        o.loggers.append(try LoggerSpec.parse(t == "true" || t.isEmpty ? "syslog" : "syslog:" + t))
    },
    flag("logformat-strftime", "%(ftime) in --log-format uses --log-date's strftime format", aliases: ["log-format-strftime"], \.formatStrftime),
    flag("log-micros", "the default request line gives the duration in microseconds", \.micros),
    row("log-slow", "MILLISECONDS", "0 = off", "log requests slower than this even with --disable-logging") { o, t throws(ValueProblem) in
        o.slowMilliseconds = try ValueParser<Int>.int(0...Int(Int32.max)).parse(t)
    },
    row("log-big", "BYTES", "0 = off", "log responses of at least this many body bytes even with --disable-logging") { o, t throws(ValueProblem) in
        o.bigBytes = UInt64(try ValueParser<Int>.bytes(0...Int.max).parse(t))
    },
    flag("log-zero", "log responses without a body even with --disable-logging", \.zero),
    flag("log-sendfile", "log responses sent with sendfile even with --disable-logging", \.sendfile),
    flag("log-ioerror", "log requests with read or write errors even with --disable-logging", \.ioError),
    flag("log-x-forwarded-for", "%(addr) and the default line show the X-Forwarded-For header's value", \.xForwardedFor),
    flag("logfile-chown", "give the log files to --uid/--gid before privileges are dropped", \.chown),
    row("route", "REGEX ACTION", "none", "on PATH_INFO matching REGEX: donotlog: (no request line), continue:/last:/break: (stop)") { o, t throws(ValueProblem) in
        o.requestRoutesTable.append(try RouteRule.parse(t))
    },
]
