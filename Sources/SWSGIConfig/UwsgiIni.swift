import Glibc

/// Reading a uWSGI config's `[uwsgi]` section (when the file has no `[swsgi]` one): each key either
/// maps onto a swsgi option, is accepted because swsgi already behaves that way (the reason is kept
/// and shown by `--check`), or is refused with one line saying what to do instead. Nothing is
/// silently ignored. README's "uWSGI options" table lists the same rows.
enum UwsgiKey: Sendable {
    /// The same option under another name.
    case rename(String)
    /// swsgi always does this: a true value is accepted, a false one refused with the reason.
    case always(String)
    /// Any value: swsgi already gives what the option asks for, for the reason given.
    case noOp(String)
    /// The value must be one of these; swsgi does that already.
    case only([String], String)
    /// Not supported: the line says why or what to do instead.
    case refused(String)
    /// Decided from the value (a listener's address form, a plugin list...).
    case custom(@Sendable (String) throws(ValueProblem) -> UwsgiOutcome)
}

/// What one `[uwsgi]` line comes to.
enum UwsgiOutcome: Sendable {
    /// Set these swsgi options (name, value), with a warning line when uWSGI's meaning needed reading.
    case set([(String, String)], warning: String? = nil)
    /// Accepted: swsgi already does this; the reason is shown by `--check`.
    case accepted(String)
}

/// gevent.monkey.patch_all() makes socket, time and threading cooperative on one gevent hub: swsgi
/// serves `gevent = N` with real request threads, whose blocking calls would become greenlets of a hub
/// nothing runs.
private let monkeyPatch = "not supported: swsgi serves gevent = N with request threads and runs no gevent hub; monkey-patching would turn the threads' blocking calls into greenlets waiting on one hub: remove the line"

/// A uWSGI flag swsgi cannot honour: off (`= false`, as uWSGI reads flags) is accepted, on is refused.
private func onlyOff(_ refusal: String) -> @Sendable (String) throws(ValueProblem) -> UwsgiOutcome {
    { v throws(ValueProblem) in
        guard !uwsgiFlag(v) else { throw ValueProblem(refusal) }
        return .accepted("off, as swsgi is")
    }
}

private let noRouter = "swsgi's workers speak HTTP themselves: there is no separate HTTP router process to configure"

let uwsgiKeys: [String: UwsgiKey] = [
    // Listeners.
    "socket": .rename("uwsgi-socket"),
    "uwsgi-socket": .rename("uwsgi-socket"),
    "http": .custom(httpListener),
    "http-socket": .custom(httpListener),
    "http11-socket": .custom(httpListener),
    // uWSGI: the protocol of every `socket =` that names none; http/http11 turn them into http-socket (below).
    "protocol": .only(["uwsgi", "http", "http11"], "socket = speaks the uwsgi protocol, or HTTP with protocol = http; other protocols: not supported"),
    // On or off: swsgi's stats server tells the two kinds of client apart by themselves.
    "stats-http": .noOp("swsgi's stats server answers an HTTP GET with HTTP and a client that sends nothing with raw JSON, whatever this says"),
    "ignore-write-errors": .always("swsgi writes no error line when a client goes away; the request line notes the unfinished response"),
    "mount": .rename("mount"),
    // uWSGI's HTTP router's (an int: the key alone is 0 there, off): swsgi has no router to configure.
    "http-keepalive": .noOp("it configures uWSGI's HTTP router, which swsgi does not have: swsgi's workers keep HTTP/1.1 connections alive themselves (--keepalive-timeout, 75 s by default)"),
    "http-auto-chunked": .always("swsgi sends a body of unknown length chunked to HTTP/1.1 clients"),
    "http-timeout": .noOp(noRouter),
    "no-defer-accept": .always("swsgi does not set TCP_DEFER_ACCEPT: a connection is accepted as soon as it is made"),
    "shared-socket": .refused("not supported: give the address to http-socket/socket directly"),
    "https": .refused("not supported: terminate TLS in nginx (or another proxy) in front of swsgi"),
    "http-websockets": .custom(onlyOff("not supported: swsgi does not speak WebSocket; run the WebSocket part under an ASGI server")),
    "http-enable-proxy-protocol": .rename("enable-proxy-protocol"),
    // uWSGI's socket_timeout also bounds each wait to write a response (uwsgi_wait_write_req), offloaded ones too here.
    "socket-timeout": .custom { v throws(ValueProblem) in .set([("header-timeout", v), ("body-timeout", v), ("write-timeout", v)]) },
    "chunked-input-timeout": .rename("body-timeout"),
    // uWSGI reads the number with atoi: `post-buffering = true` is 0, off.
    "post-buffering": .custom { v throws(ValueProblem) in .set([("post-buffering", ["true", "false", "yes", "no", "on", "off"].contains(v.lowercased()) ? "0" : v)]) },
    // Static files.
    "check-static": .custom { v throws(ValueProblem) in .set([("static-map", "/=" + v)]) },
    // uWSGI starts offload threads only for a value above 0 (`if (uwsgi.offload_threads > 0)`): a negative
    // number (read with strtol) is none.
    "offload-threads": .custom { v throws(ValueProblem) in .set([("offload-threads", (Int(v) ?? 1) <= 0 ? "0" : v)]) },
    "offload-thread": .custom { v throws(ValueProblem) in .set([("offload-threads", (Int(v) ?? 1) <= 0 ? "0" : v)]) },
    "chmod": .rename("chmod-socket"),
    // Workers.
    "workers": .rename("processes"),
    // uWSGI runs a worker threaded only for threads > 1: `threads = 0` (or `true`, read as 0) is one thread.
    "threads": .custom { v throws(ValueProblem) in .set([("threads", Int(v) == 0 ? "1" : v)]) },
    "reload-mercy": .rename("worker-reload-mercy"),
    "thunder-lock": .always("each swsgi worker waits on the listener with EPOLLEXCLUSIVE: the kernel wakes one worker per connection, so there is no herd to serialize"),
    "no-orphans": .always("swsgi's workers get SIGKILL when the master dies (PR_SET_PDEATHSIG)"),
    "harakiri-verbose": .always("swsgi's HARAKIRI line always names the request and how long it ran"),
    "hook-master-start": .only(["unix_signal:15gracefully_kill_them_all"],
                               "SIGTERM already stops swsgi gracefully (queued connections are served, then the workers exit); other hooks: use hook-asap"),
    "py-call-uwsgi-fork-hooks": .always("swsgi calls Python's own fork hooks around every fork"),
    // uWSGI's async cores (gevent = N is async = N on the gevent loop): N requests at once per worker.
    // swsgi has no async loop and serves them with N request threads; `uwsgiAssignments` settles the
    // number with `threads` (the larger), caps it and says so.
    "gevent": .custom { v throws(ValueProblem) in .set([("threads", v)]) },
    "async": .custom { v throws(ValueProblem) in .set([("threads", v)]) },
    // uWSGI's suspend engine for async cores (a no-op there without async): swsgi's request threads need none.
    "ugreen": .noOp("the green-thread engine of uWSGI's async cores: swsgi serves async = N with N request threads, which switch at any blocking call"),
    "gevent-monkey-patch": .custom(onlyOff(monkeyPatch)),
    "gevent-early-monkey-patch": .custom(onlyOff(monkeyPatch)),
    "smart-attach-daemon": .refused("not supported: a daemon managed by its pidfile (it detaches, the master watches the file) has no swsgi equivalent; run it in the foreground with attach-daemon (celery: without --detach), and the master respawns it"),
    "smart-attach-daemon2": .refused("not supported: a daemon managed by a pidfile has no swsgi equivalent; attach-daemon runs the same command in the foreground and respawns it (the difference: it stops with the server)"),
    "route-if": .refused("not supported: swsgi has no internal routing; route in nginx in front"),
    "route-run": .refused("not supported: swsgi has no internal routing; route in nginx in front"),
    "add-header": .refused("not supported: add headers in the app or in nginx (add_header)"),
    "alarm": .refused("not supported: swsgi raises no alarms; watch its log or --stats"),
    "alarm-backlog": .refused("not supported: swsgi raises no alarms; watch listen_queue in --stats"),
    "alarm-log": .refused("not supported: swsgi raises no alarms; watch its log"),
    "alarm-segfault": .refused("not supported: swsgi raises no alarms; a dead worker is logged and respawned"),
    "reload-on-exception-type": .refused("not supported: reload-on-exception recycles on any exception (uWSGI compares these with the exception's message, not its type)"),
    "reload-on-exception-value": .refused("not supported: reload-on-exception recycles on any exception"),
    "reload-on-exception-repr": .refused("not supported: reload-on-exception recycles on any exception"),
    "vhost": .refused("not supported: swsgi serves one app; run one swsgi per app"),
    "honour-stdin": .always("swsgi leaves stdin as it was given (daemonize aside): the master, workers and app inherit it"),
    "plugin-dir": .noOp("swsgi loads no plugins from a directory: Python, HTTP and the busyness algorithm are built in, and plugins = is checked against them"),
    // Process.
    "binary-path": .noOp("swsgi never re-executes itself: a reload (HUP) replaces the workers and keeps the master, so no binary path is used"),
    "no-threads-wait": .noOp("a reloading or stopping swsgi worker waits for its request threads only up to worker-reload-mercy, then it is killed: a stuck thread cannot hold it"),
    "master-as-root": .refused("not supported: swsgi's master drops to uid/gid too, once the listeners are bound; run what needs root in hook-asap/exec-asap"),
    "cap": .refused("not supported: swsgi binds its listeners before dropping to uid (ports below 1024 work); give other capabilities to the service (systemd AmbientCapabilities=)"),
    "http-connect-timeout": .noOp(noRouter),
    // Python.
    "module": .custom(moduleSpec),
    "wsgi": .custom(moduleSpec),
    "file": .rename("wsgi-file"),
    "python-path": .rename("pythonpath"),
    "pp": .rename("pythonpath"),
    "virtualenv": .rename("home"),
    "venv": .rename("home"),
    "pyhome": .rename("home"),
    "lazy": .rename("lazy-apps"),
    // uWSGI's early-* Python options run before the rest of its start-up; swsgi has no such phase: the
    // path is on sys.path and the module imported in the master before the app and any fork.
    "early-pythonpath": .rename("pythonpath"),
    "early-python-path": .rename("pythonpath"),
    "early-pyimport": .rename("shared-import"),
    "early-python-import": .rename("shared-import"),
    // uWSGI loads these in each worker after fork; served the same, loaded once in the master before it.
    "worker-mount": .rename("mount"),
    // The rest of uWSGI's spellings.
    "python-auto-reload": .rename("py-autoreload"),
    "shared-python-import": .rename("shared-import"),
    "wsgi-env-behaviour": .only(["holy", "cheat"], "swsgi builds each request's environ as a fresh dict from a prepared copy: what holy guarantees, at cheat's cost"),
    "wsgi-env-behavior": .only(["holy", "cheat"], "swsgi builds each request's environ as a fresh dict from a prepared copy: what holy guarantees, at cheat's cost"),
    "enable-threads": .rename("enable-threads"),
    // Process, files.
    "pidfile": .rename("pid-file"),
    "pidfile2": .rename("pid-file"),
    "safe-pidfile": .rename("pid-file"),
    "safe-pidfile2": .rename("pid-file"),
    "procname-prefix-spaced": .custom { v throws(ValueProblem) in .set([("procname-prefix", v + " ")]) },
    "print": .custom { v throws(ValueProblem) in .set([("hook-asap", "print:" + v)]) },
    // Logging (LoggingOptionTable has the options under uWSGI's names).
    "log-master": .always("every swsgi log line is one write(2), so lines from different workers never mix"),
    "threaded-log": .always("every swsgi log line is one write(2) from the process that logs it; there is no logger thread to add"),
    "threaded-logger": .always("every swsgi log line is one write(2) from the process that logs it; there is no logger thread to offload"),
    "log-master-bufsize": .noOp("swsgi has no log master buffer: each process writes its lines itself, one write(2) each"),
    // uWSGI reads the value with strtol: `log-slow = True` is 0, off (with a warning).
    "log-slow": .custom { v throws(ValueProblem) in
        if let n = Int(v), n >= 0 { return .set([("log-slow", String(n))]) }
        return .accepted("uWSGI reads \(quoted(v)) as 0: slow requests are not singled out")
    },
    // uWSGI's logfile-chown takes no value (`logfile-chown = %U:%G` still only means on).
    "logfile-chown": .custom { v throws(ValueProblem) in .set([("logfile-chown", String(uwsgiFlag(v)))]) },
    // log-sendfile / log-ioerror are flags that uWSGI declares with a value.
    // Always so in swsgi.
    // Read where the section is interpreted (`strict` below): on, as uWSGI's, or off.
    "strict": .noOp("on: an unknown key (a placeholder nothing declared) is an error, as in uWSGI; off: a near miss of an option is a warning"),
    "master": .always("swsgi always runs a master process"),
    "vacuum": .rename("vacuum"),
    "single-interpreter": .always("swsgi runs one interpreter per process"),
    "die-on-term": .always("SIGTERM stops swsgi gracefully"),
    "auto-procname": .always("swsgi always titles its processes"),
    "ignore-sigpipe": .always("swsgi never gets SIGPIPE: the signal is ignored and sockets are written with MSG_NOSIGNAL"),
    "cheaper-algo": .only(["busyness"], "swsgi's cheaper mode is the busyness algorithm"),
    "plugin": .custom(plugins),
    "plugins": .custom(plugins),
]

/// `plugins = python3,http`: swsgi has Python, HTTP and the busyness algorithm built in.
private func plugins(_ value: String) throws(ValueProblem) -> UwsgiOutcome {
    let builtIn = ["python", "http", "cheaper_busyness", "corerouter", "logfile", "syslog", "rsyslog", "escape_json"]
    for raw in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
        var name = String(raw)
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        if name.hasSuffix("_plugin.so") { name = String(name.dropLast("_plugin.so".count)) }
        // python, python3, python39, python3.6, python3.11...
        let isPython = name.hasPrefix("python") && name.dropFirst("python".count).allSatisfy { $0.isNumber || $0 == "." }
        if !isPython && !builtIn.contains(name) {
            throw ValueProblem("plugin \(quoted(String(raw))) is not built into swsgi (it has Python, HTTP and the busyness algorithm); remove it")
        }
    }
    return .accepted("swsgi has Python, HTTP and the busyness algorithm built in")
}

/// `module = MODULE[:CALLABLE]` (and `wsgi`): set as given; `settleModulePath` decides on a file path there.
private func moduleSpec(_ value: String) throws(ValueProblem) -> UwsgiOutcome {
    .set([("module", value)])
}

/// A file path given as `module` (`/srv/app/wsgi.py`, `deploy/app.wsgi[:callable]`): the file and the
/// callable, or nil for a module name. uWSGI's `module` hands any value to PyImport_ImportModule, which
/// cannot import a path; its `mount` and command line (python_plugin.c uwsgi_python_magic, pyloader.c
/// uwsgi_mount_loader) load `.py`/`.wsgi` paths as files: that is what such a line means. A dotted name
/// ending in `.wsgi` (Django's `mysite.wsgi`) stays a module.
func modulePathForm(_ value: String) -> (file: String, callable: String?)? {
    // uWSGI splits the callable off at the first colon (get_uwsgi_pymodule).
    let colon = value.firstIndex(of: ":")
    let target = colon.map { String(value[..<$0]) } ?? value
    // Text after a space is no path (`mysite.wsgi //comment`): that module fails to import, as in uWSGI.
    guard target.contains("/") || target.hasSuffix(".py"), !target.contains(where: \.isWhitespace) else { return nil }
    return (target, colon.map { String(value[value.index(after: $0)...]) })
}

/// `http = ADDR` / `http-socket = ADDR`: HTTP on TCP (`HOST:PORT`) or on a Unix socket (a path).
private func httpListener(_ value: String) throws(ValueProblem) -> UwsgiOutcome {
    if value.contains("/") || !value.contains(":") { return .set([("socket", value)]) }
    return .set([("http-socket", value)])
}

extension ServerOptions {
    /// The `[uwsgi]` section of `file` (or `section`) run through uWSGI's config language and mapped
    /// to swsgi options; the second list is the keys accepted with no option behind them, with why.
    static func uwsgiAssignments(file: String, section: String?, world: UwsgiConfigWorld, check: Bool,
                                 problems: inout [String], warnings: inout [String]) -> ([Assignment], [String]) {
        var reader = UwsgiConfigReader(world: world)
        reader.check = check
        reader.read(section.map { "\(file):\($0)" } ?? file, from: "--ini")
        reader.finish()
        problems += reader.problems
        warnings += reader.warnings
        let strict = reader.entries.contains { $0.key == "strict" && uwsgiFlag($0.value) }
        var assignments: [Assignment] = []
        var notes: [String] = []
        // The last `gevent =`/`async =` (both set uWSGI's async cores): settled with `threads` below.
        var asyncCores: (entry: UwsgiEntry, assignment: Assignment)? = nil
        // `protocol = http` (core/socket.c: the protocol of sockets that name none) makes `socket =` HTTP.
        let socketsSpeakHTTP = reader.entries.last { $0.key == "protocol" && !$0.isPlaceholder }
            .map { ["http", "http11"].contains(withoutTrailingComment($0.value).lowercased()) } ?? false
        for var entry in reader.entries {
            if socketsSpeakHTTP && entry.key == "socket" && !entry.isPlaceholder { entry.key = "http-socket" }
            do {
                let (a, note) = try uwsgiAssignment(entry, referenced: reader.referenced, strict: strict, check: check,
                                                    commandFailed: reader.failedCommandOrigins.contains(entry.origin), warnings: &warnings)
                if asyncCoreKeys.contains(entry.key), let cores = a.first {
                    asyncCores = (entry, cores)
                    continue
                }
                assignments += a
                if let note { notes.append(note) }
            } catch {
                problems.append(error.message)
            }
        }
        if let (entry, cores) = asyncCores {
            settleThreads(asyncCores: cores, key: entry.key, origin: entry.origin, assignments: &assignments, warnings: &warnings)
        }
        do {
            try settleModulePath(assignments: &assignments, warnings: &warnings)
        } catch {
            problems.append(error.message)
        }
        // uWSGI's python plugin loads `module`, then `wsgi-file`, then `paste`, then the mounts, each at its
        // mount point (those three at /), and skips an app whose point is taken ("mountpoint already
        // configured"): the first app at a point is the one served, the others are never imported.
        var served: [String: Assignment] = [:]
        var skipped: Set<String> = []
        for name in ["module", "wsgi-file", "paste", "mount"] {
            // module, wsgi-file and paste hold one value each (the last given wins); mounts accumulate.
            let given = name == "mount" ? assignments.filter { $0.spec.name == name }
                : assignments.last { $0.spec.name == name }.map { [$0] } ?? []
            for a in given {
                let point = name == "mount" ? ((try? Mount(parsing: a.value))?.point ?? "?\(a.label)") : ""
                if let first = served[point] {
                    warnings.append("\(a.label) = \(quoted(a.value)): not loaded: \(first.label) = \(quoted(first.value)) is the app at \(point.isEmpty ? "/" : point) (uWSGI loads \(first.spec.name) first and skips this one)")
                    skipped.insert(a.label)
                } else {
                    served[point] = a
                }
            }
        }
        assignments.removeAll { skipped.contains($0.label) }
        return (assignments, notes)
    }

    /// uWSGI keeps one `module` (the last line given). When that is a file path (`modulePathForm`) its
    /// import fails under uWSGI: a `wsgi-file` given too is then the app uWSGI serves, and swsgi serves it,
    /// naming the module line as not loaded; with no `wsgi-file` swsgi loads the path as the wsgi-file
    /// (with its callable), in the module line's place, and says so.
    static func settleModulePath(assignments: inout [Assignment], warnings: inout [String]) throws(ConfigError) {
        guard let at = assignments.lastIndex(where: { $0.spec.name == "module" }),
              let (file, callable) = modulePathForm(assignments[at].value) else { return }
        let module = assignments[at]
        let shown = "\(module.label) = \(quoted(module.value)) is a file path, not a module name: uWSGI's module cannot import it"
        if let given = assignments.last(where: { $0.spec.name == "wsgi-file" }) {
            warnings.append("\(shown): not loaded; \(given.label) = \(quoted(given.value)) is the app, as uWSGI serves it after the failed import")
            assignments.removeAll { $0.spec.name == "module" }
            return
        }
        guard let fileSpec = optionsByName["wsgi-file"], let callableSpec = optionsByName["callable"] else {
            throw ConfigError("\(module.label): no swsgi option wsgi-file")
        }
        var replacement = [Assignment(spec: fileSpec, value: file, label: module.label)]
        if let callable { replacement.append(Assignment(spec: callableSpec, value: callable, label: module.label)) }
        assignments.replaceSubrange(at...at, with: replacement)
        // Earlier module lines were replaced by this one in uWSGI.
        assignments.removeAll { $0.spec.name == "module" }
        warnings.append("\(shown) (its mount and command line load .py/.wsgi paths as files); swsgi loads it as wsgi-file = \(quoted(file))"
                        + (callable.map { ", callable \(quoted($0))" } ?? ""))
    }

    /// `gevent = N`/`async = N` ask for N requests at once per worker (uWSGI's async cores); swsgi serves
    /// them with N request threads: the larger of N and `threads`, at most swsgi's thread maximum, with
    /// one warning line saying which and why.
    static func settleThreads(asyncCores cores: Assignment, key: String, origin: String,
                              assignments: inout [Assignment], warnings: inout [String]) {
        let asked = Int(cores.value) ?? 1
        let given = assignments.last { $0.spec.name == "threads" }
        // `threads = true` is no number: left for --threads' own refusal.
        let threads = given.flatMap { Int($0.value) }
        var n = max(asked, threads ?? 1, 1)
        var why = ""
        if let threads {
            why = " (the larger of \(key) = \(asked) and threads = \(threads))"
        }
        if n > PythonAppOptions.maxThreads {
            n = PythonAppOptions.maxThreads
            why += ", swsgi's maximum (more would mostly wait for the GIL: add processes for more)"
        }
        if threads != nil { assignments.removeAll { $0.spec.name == "threads" } }
        assignments.append(Assignment(spec: cores.spec, value: String(n), label: cores.label))
        let loop = key == "gevent" ? "gevent" : "async"
        warnings.append("\(origin): \(key) = \(asked): served by \(n) request thread\(n == 1 ? "" : "s") per worker\(why); swsgi has no \(loop) loop")
    }

    /// One `[uwsgi]` entry as assignments, or a note for an accepted key; throws the one-line refusal.
    static func uwsgiAssignment(_ entry: UwsgiEntry, referenced: Set<String>, strict: Bool, check: Bool = false,
                                commandFailed: Bool = false, warnings: inout [String]) throws(ConfigError) -> ([Assignment], String?) {
        let key = entry.key
        let where_ = entry.origin
        var label = "\(where_): \(key)"
        // uWSGI's ini reader passes `= value` (and a merge-conflict marker `=======`) as the key "", and
        // `<<<<<<< HEAD` as a key with that name: unknown options, so placeholders nothing can name.
        if key.isEmpty || isMergeConflictMarker(key) {
            let what = key.isEmpty ? "no key before '='" : "\(quoted(key)) is a merge-conflict marker"
            let both = isMergeConflictMarker(key) || entry.value.hasPrefix("======") ? " (both sides of the conflict are read: where both give a key, the later line wins)" : ""
            if strict {
                throw ConfigError("\(where_): \(what): refused with strict = true, as uWSGI's strict mode refuses it (an unknown option)")
            }
            warnings.append("\(where_): \(what): ignored, as uWSGI ignores it\(both)")
            return ([], "; \(where_): \(what): ignored, as uWSGI ignores it")
        }
        // Shared uWSGI configs comment at the end of lines (`harakiri = 60 ; seconds`) and quote values
        // to keep spaces (`procname-prefix = "mysvc "`).
        // Except `env`: uWSGI hands its value to the app byte for byte, and `PASS=abc #def` is a secret with a
        // hash in it; cutting it would silently change what the app gets.
        var value = key == "env" ? String(entry.value.trimmingSpaces()) : withoutTrailingComment(entry.value)
        if key != "env", value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
        // `env = NAME = VALUE`: uWSGI putenv()s the value whole, a variable named "NAME " (trailing space) that
        // the app never finds under NAME. What the line means to its reader is NAME=VALUE: set that, and say so.
        if key == "env", let eq = value.firstIndex(of: "="), eq != value.startIndex,
           value[value.index(before: eq)] == " " || value[value.index(before: eq)] == "\t" {
            let name = String(value[..<eq].trimmingSpaces())
            let setting = String(value[value.index(after: eq)...].drop { $0 == " " || $0 == "\t" })
            warnings.append("\(where_): env = \(quoted(value)): sets \(name)=\(quoted(setting)) (the spaces around '=' dropped); "
                            + "uWSGI would set a variable named \(quoted(String(value[..<eq]))), with the space, which the app does not find as \(name)")
            value = name + "=" + setting
        }
        if entry.isPlaceholder || ["ini", "include", "inherit"].contains(key) {
            return ([], nil)
        }
        // uWSGI keeps `$(VAR)` as written when VAR is unset: the value belongs to the machine that runs it.
        if let variable = unresolvedVariable(in: value) {
            if check {
                return ([], "; \(key) = \(value): depends on $(\(variable)), unset here; checked when swsgi starts")
            }
            throw ConfigError("\(label) = \(quoted(value)): $(\(variable)) is not set in the environment")
        }
        // `--check` only: a command that failed here (its warning says how) is left for the real start.
        // Text that merely reads `@(exec://` (never closed, or printed by a command) is checked as the start reads it.
        if check, commandFailed, let r = value.firstRange(of: "@(exec://") {
            return ([], "; \(key) = \(value): depends on \(value[r.lowerBound...].prefix(60))..., which failed here; checked when swsgi starts")
        }
        // Placeholder names that swsgi also has as options (`app = run`, then `module = %(app)`) stay
        // placeholders; `app` always is one here: uWSGI has no such option, and configs use the name.
        if (referenced.contains(key) || key == "app"), !uwsgiOptionNames.contains(key), uwsgiKeys[key] == nil {
            return ([], "; \(key) = \(value): placeholder (not an option)")
        }
        if let (address, warning) = uwsgiPortReading(key: key, value: value) {
            value = address
            warnings.append("\(where_): \(warning)")
        }
        // Numbers as uWSGI reads them (strtol): `processes = 1a` is 1, with a warning saying so.
        let isOption = uwsgiKeys[key] != nil || optionsByName[key] != nil
        if isOption {
            do {
                if let (number, warning) = try uwsgiNumberReading(key: key, value: value) {
                    label += " (\(quoted(value)) read as \(number))"
                    value = number
                    warnings.append("\(where_): \(warning)")
                }
            } catch {
                throw ConfigError("\(label): \(error.message)")
            }
        }
        func assign(_ name: String, _ v: String) throws(ConfigError) -> Assignment {
            guard let spec = optionsByName[name] else { throw ConfigError("\(label): no swsgi option \(name)") }
            // uWSGI's flags: given alone, or with anything but false/off/no/0, they are on.
            return Assignment(spec: spec, value: spec.isBoolean ? String(uwsgiFlag(v)) : v, label: label)
        }
        switch uwsgiKeys[key] {
        case .rename(let name)?:
            return ([try assign(name, value)], nil)
        case .always(let why)?:
            guard uwsgiFlag(value) else {
                throw ConfigError("\(label) = \(value): not supported, \(why)")
            }
            return ([], "; \(key) = \(value): accepted, \(why)")
        case .noOp(let why)?:
            return ([], "; \(key) = \(value): accepted, \(why)")
        case .only(let allowed, let why)?:
            guard allowed.contains(value.lowercased().filter { $0 != " " }) else {
                throw ConfigError("\(label) = \(quoted(value)): not supported; \(why)")
            }
            return ([], "; \(key) = \(value): accepted, \(why)")
        case .refused(let why)?:
            throw ConfigError("\(label): \(why)")
        case .custom(let decide)?:
            let outcome: UwsgiOutcome
            do {
                outcome = try decide(value)
            } catch {
                throw ConfigError("\(label): \(error.message)")
            }
            switch outcome {
            case .set(let pairs, let warning):
                var out: [Assignment] = []
                for (name, v) in pairs { out.append(try assign(name, v)) }
                if let warning { warnings.append("\(where_): \(key) = \(warning)") }
                return (out, nil)
            case .accepted(let why):
                return ([], "; \(key) = \(value): accepted, \(why)")
            }
        case nil:
            break
        }
        if let spec = optionsByName[key] {
            switch spec.role {
            case .help, .version, .ini, .check:
                throw ConfigError("\(where_): '\(key)' cannot be set in an ini file")
            case .setting:
                return ([try assign(key, value)], nil)
            }
        }
        if uwsgiOptionNames.contains(key) {
            throw ConfigError("\(label): a uWSGI option swsgi does not implement; remove it (README, \"uWSGI options\", says what to use instead)")
        }
        // Not an option anywhere: uWSGI keeps it as a placeholder for %(name), and so does swsgi, so the
        // file runs as it ran under uWSGI. A near miss of a real option is likelier a typo (`thread = 4`
        // gives no threads under uWSGI either): never silent, it is a warning at start-up and in --check.
        // strict = true (uWSGI's own strict mode) makes every undeclared placeholder an error.
        let hint = typoHint(key)
        if strict && !referenced.contains(key) {
            throw ConfigError("\(where_): unknown option \(quoted(key))\(hint) (strict = true: declare placeholders with set-placeholder)")
        }
        if !referenced.contains(key) && !hint.isEmpty {
            warnings.append("\(where_): unknown option \(quoted(key))\(hint): kept as a placeholder, as uWSGI does, so it sets nothing; "
                            + "fix the name or delete the line (strict = true makes this an error)")
        }
        return ([], "; \(key) = \(value): placeholder (not an option)\(referenced.contains(key) ? "" : ", not referred to")")
    }
}

/// The gevent/async keys: uWSGI's async cores per worker.
let asyncCoreKeys: Set<String> = ["gevent", "async"]

/// A line git leaves in a file with an unresolved merge: `<<<<<<< HEAD`, `=======`, `>>>>>>> branch`,
/// `||||||| base` (the `=======` one reaches here as an empty key).
func isMergeConflictMarker(_ key: String) -> Bool {
    ["<<<<<<<", ">>>>>>>", "|||||||"].contains { key == $0 || key.hasPrefix($0 + " ") }
}

/// ` (did you mean 'processes'?)` when `key` is one or two edits from a key swsgi knows (one for names
/// of up to 5 characters: `base` and `lib` are placeholders, not typos of `paste` and `uid`), else "".
func typoHint(_ key: String) -> String {
    var best: (name: String, distance: Int)? = nil
    for name in Array(optionsByName.keys) + Array(uwsgiKeys.keys) {
        let d = editDistance(key, name)
        if d < (best?.distance ?? Int.max) { best = (name, d) }
    }
    guard let best, best.distance <= (key.count <= 5 ? 1 : key.count >= 12 ? 3 : 2) else { return "" }
    return " (did you mean '\(best.name)'?)"
}

/// uWSGI's reading of a flag's value (uwsgi_opt_true): empty or anything but false/off/no/0 is on.
func uwsgiFlag(_ value: String) -> Bool {
    !["false", "off", "no", "0"].contains(value.lowercased())
}

/// The name in the first `$(NAME)` left in a value (uWSGI leaves unset variables as written).
func unresolvedVariable(in value: String) -> String? {
    guard let start = value.firstRange(of: "$(") else { return nil }
    let rest = value[start.upperBound...]
    guard let close = rest.firstIndex(of: ")") else { return nil }
    let name = rest[..<close]
    guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ":" }) else { return nil }
    return String(name)
}

/// `60 ; seconds` -> `60`: a `;` or `#` after whitespace, outside double quotes, starts a comment.
/// A value that starts with one (`procname-prefix = #svc`) is kept, as uWSGI keeps it.
func withoutTrailingComment(_ value: String) -> String {
    var inQuotes = false
    var previous: Character = "x"
    var out = ""
    for c in value {
        if c == "\"" { inQuotes.toggle() }
        if !inQuotes, c == ";" || c == "#", previous == " " || previous == "\t" { break }
        out.append(c)
        previous = c
    }
    return String(out.trimmingSpaces())
}
