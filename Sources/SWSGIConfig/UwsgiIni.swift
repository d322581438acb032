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
    /// Set these swsgi options (name, value).
    case set([(String, String)])
    /// Accepted: swsgi already does this; the reason is shown by `--check`.
    case accepted(String)
}

private let noRouter = "swsgi's workers speak HTTP themselves: there is no separate HTTP router process to configure"

let uwsgiKeys: [String: UwsgiKey] = [
    // Listeners.
    "socket": .rename("uwsgi-socket"),
    "uwsgi-socket": .rename("uwsgi-socket"),
    "http": .custom(httpListener),
    "http-socket": .custom(httpListener),
    "http11-socket": .custom(httpListener),
    "protocol": .only(["uwsgi"], "a [uwsgi] socket = speaks the uwsgi protocol; for HTTP write http-socket = instead"),
    "chmod": .rename("chmod-socket"),
    // Workers.
    "workers": .rename("processes"),
    "reload-mercy": .rename("worker-reload-mercy"),
    // Python.
    "wsgi": .rename("module"),
    "file": .rename("wsgi-file"),
    "python-path": .rename("pythonpath"),
    "pp": .rename("pythonpath"),
    "virtualenv": .rename("home"),
    "venv": .rename("home"),
    "pyhome": .rename("home"),
    "lazy": .rename("lazy-apps"),
    "enable-threads": .rename("enable-threads"),
    // Process, files.
    "pidfile": .rename("pid-file"),
    "pidfile2": .rename("pid-file"),
    "safe-pidfile": .rename("pid-file"),
    "safe-pidfile2": .rename("pid-file"),
    "procname-prefix-spaced": .custom { v throws(ValueProblem) in .set([("procname-prefix", v + " ")]) },
    "logformat": .rename("log-format"),
    "print": .custom { v throws(ValueProblem) in .set([("hook-asap", "print:" + v)]) },
    // Always so in swsgi.
    "strict": .always("swsgi refuses unknown options everywhere"),
    "master": .always("swsgi always runs a master process"),
    "vacuum": .always("swsgi removes its own socket path at exit"),
    "single-interpreter": .always("swsgi runs one interpreter per process"),
    "die-on-term": .always("SIGTERM stops swsgi gracefully"),
    "auto-procname": .always("swsgi always titles its processes"),
    "cheaper-algo": .only(["busyness"], "swsgi's cheaper mode is the busyness algorithm"),
    "plugin": .custom(plugins),
    "plugins": .custom(plugins),
    "memory-report": .only(["false", "0"], "not supported: worker RSS is in the stats socket (--stats)"),
    "daemonize": .refused("not supported: run swsgi under a supervisor (systemd, hupwatch)"),
    "logto": .refused("not supported: swsgi logs to stderr; redirect it or let the supervisor collect it"),
]

/// `plugins = python3,http`: swsgi has Python, HTTP and the busyness algorithm built in.
private func plugins(_ value: String) throws(ValueProblem) -> UwsgiOutcome {
    let builtIn = ["python", "http", "cheaper_busyness", "corerouter"]
    for raw in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
        var name = String(raw)
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        if name.hasSuffix("_plugin.so") { name = String(name.dropLast("_plugin.so".count)) }
        let isPython = name.hasPrefix("python") && name.dropFirst("python".count).allSatisfy { $0.isNumber }
        if !isPython && !builtIn.contains(name) {
            throw ValueProblem("plugin \(quoted(String(raw))) is not built into swsgi (it has Python, HTTP and the busyness algorithm); remove it")
        }
    }
    return .accepted("swsgi has Python, HTTP and the busyness algorithm built in")
}

/// `http = ADDR` / `http-socket = ADDR`: HTTP on TCP (`HOST:PORT`) or on a Unix socket (a path).
private func httpListener(_ value: String) throws(ValueProblem) -> UwsgiOutcome {
    if value.contains("/") || !value.contains(":") { return .set([("socket", value)]) }
    return .set([("http-socket", value)])
}

extension ServerOptions {
    /// The `[uwsgi]` section of `file` (or `section`) run through uWSGI's config language and mapped
    /// to swsgi options; the second list is the keys accepted with no option behind them, with why.
    static func uwsgiAssignments(file: String, section: String?, world: UwsgiConfigWorld, problems: inout [String]) -> ([Assignment], [String]) {
        var reader = UwsgiConfigReader(world: world)
        reader.read(section.map { "\(file):\($0)" } ?? file, from: "--ini")
        reader.finish()
        problems += reader.problems
        let strict = reader.entries.contains { $0.key == "strict" && ((try? ValueParser<Bool>.bool.parse($0.value.isEmpty ? "true" : $0.value)) ?? false) }
        var assignments: [Assignment] = []
        var notes: [String] = []
        for entry in reader.entries {
            do {
                let (a, note) = try uwsgiAssignment(entry, referenced: reader.referenced, strict: strict)
                assignments += a
                if let note { notes.append(note) }
            } catch {
                problems.append(error.message)
            }
        }
        return (assignments, notes)
    }

    /// One `[uwsgi]` entry as assignments, or a note for an accepted key; throws the one-line refusal.
    static func uwsgiAssignment(_ entry: UwsgiEntry, referenced: Set<String>, strict: Bool) throws(ConfigError) -> ([Assignment], String?) {
        let key = entry.key
        let where_ = entry.origin
        let label = "\(where_): \(key)"
        if key.isEmpty {
            throw ConfigError("\(where_): malformed line (no key before =)")
        }
        // Shared uWSGI configs comment at the end of lines (`harakiri = 60 ; seconds`) and quote values
        // to keep spaces (`procname-prefix = "mysvc "`).
        var value = withoutTrailingComment(entry.value)
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
        if entry.isPlaceholder || ["ini", "include", "inherit"].contains(key) {
            return ([], nil)
        }
        func assign(_ name: String, _ v: String) throws(ConfigError) -> Assignment {
            guard let spec = optionsByName[name] else { throw ConfigError("\(label): no swsgi option \(name)") }
            return Assignment(spec: spec, value: v, label: label)
        }
        switch uwsgiKeys[key] {
        case .rename(let name)?:
            return ([try assign(name, value)], nil)
        case .always(let why)?:
            do {
                guard try ValueParser<Bool>.bool.parse(value.isEmpty ? "true" : value) else {
                    throw ConfigError("\(label) = \(value): not supported, \(why)")
                }
            } catch let e as ConfigError {
                throw e
            } catch {
                throw ConfigError("\(label): \((error as? ValueProblem)?.message ?? "\(error)")")
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
            case .set(let pairs):
                var out: [Assignment] = []
                for (name, v) in pairs { out.append(try assign(name, v)) }
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
                return ([Assignment(spec: spec, value: value, label: label)], nil)
            }
        }
        if uwsgiOptionNames.contains(key) {
            throw ConfigError("\(label): a uWSGI option swsgi does not implement; remove it (README, \"uWSGI options\", says what to use instead)")
        }
        // Not an option anywhere: uWSGI keeps it as a placeholder for %(name). A near miss of a real
        // option is far likelier a typo, and strict = true forbids placeholders not declared as such.
        let hint = suggestion(for: key, style: .ini, extra: Array(uwsgiKeys.keys) + Array(uwsgiOptionNames))
        if strict && !referenced.contains(key) {
            throw ConfigError("\(where_): unknown option \(quoted(key))\(hint) (strict = true: declare placeholders with set-placeholder)")
        }
        if referenced.contains(key) || hint.isEmpty {
            return ([], "; \(key) = \(value): placeholder (not an option)\(referenced.contains(key) ? "" : ", not referred to")")
        }
        throw ConfigError("\(where_): unknown option \(quoted(key))\(hint)")
    }
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
