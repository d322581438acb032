import Glibc

/// Reading a uWSGI config's `[uwsgi]` section (when the file has no `[swsgi]` one): each key either
/// maps onto a swsgi option, is accepted because swsgi always behaves that way, or is refused with
/// one line naming it. Nothing is silently ignored.
enum UwsgiKey {
    /// The same option under another name (`socket` is the uwsgi protocol, as in uWSGI).
    case rename(String)
    /// swsgi always does this: a true value is accepted, a false one refused with the reason.
    case always(String)
    /// The value must be one of these; swsgi does that already.
    case only([String], String)
    /// Not supported: the line says why or what to do instead.
    case refused(String)
}

let uwsgiKeys: [String: UwsgiKey] = [
    "socket": .rename("uwsgi-socket"),
    "uwsgi-socket": .rename("uwsgi-socket"),
    "http": .rename("http-socket"),
    "workers": .rename("processes"),
    "wsgi": .rename("module"),
    "python-path": .rename("pythonpath"),
    "pp": .rename("pythonpath"),
    "virtualenv": .rename("home"),
    "venv": .rename("home"),
    "strict": .always("swsgi refuses unknown options everywhere"),
    "master": .always("swsgi always runs a master process"),
    "vacuum": .always("swsgi removes its own socket path at exit"),
    "single-interpreter": .always("swsgi runs one interpreter per process"),
    "die-on-term": .always("SIGTERM stops swsgi gracefully"),
    "auto-procname": .always("swsgi always titles its processes"),
    "memory-report": .refused("not supported: worker RSS is in the stats socket (--stats)"),
    "cheaper-algo": .only(["busyness"], "swsgi's cheaper mode is the busyness algorithm"),
    "plugin": .only(["python3", "python", "python3,cheaper_busyness", "cheaper_busyness,python3", "python,cheaper_busyness"],
                    "swsgi has Python and busyness built in"),
    "plugins": .only(["python3", "python", "python3,cheaper_busyness", "cheaper_busyness,python3", "python,cheaper_busyness"],
                     "swsgi has Python and busyness built in"),
    "uid": .refused("not supported: start swsgi as that user (systemd User=, or su)"),
    "gid": .refused("not supported: start swsgi as that group (systemd Group=)"),
    "daemonize": .refused("not supported: run swsgi under a supervisor (systemd, hupwatch)"),
    "logto": .refused("not supported: swsgi logs to stderr; redirect it or let the supervisor collect it"),
    "enable-threads": .rename("enable-threads"),
]

extension ServerOptions {
    /// One `[uwsgi]` line as assignments (none for an accepted no-op); throws the one-line refusal.
    static func uwsgiAssignment(key: String, value rawValue: String, where where_: String, file: String) throws(ConfigError) -> [Assignment] {
        // Shared uWSGI configs comment at the end of lines (`harakiri = 60 ; seconds`) and quote values
        // to keep spaces (`procname-prefix = "mysvc "`).
        var value = withoutTrailingComment(rawValue)
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
        let label = "\(where_): \(key)"
        value = try expandMagicVariables(value, file: file, label: label)
        switch uwsgiKeys[key] {
        case .rename(let name)?:
            guard let spec = optionsByName[name] else { throw ConfigError("\(label): no swsgi option \(name)") }
            return [Assignment(spec: spec, value: value, label: label)]
        case .always(let why)?:
            do {
                guard try ValueParser<Bool>.bool.parse(value) else {
                    throw ConfigError("\(label) = \(value): not supported, \(why)")
                }
            } catch let e as ConfigError {
                throw e
            } catch {
                throw ConfigError("\(label): \((error as? ValueProblem)?.message ?? "\(error)")")
            }
            return []
        case .only(let allowed, let why)?:
            guard allowed.contains(value.replacingOccurrences(of: " ", with: "")) else {
                throw ConfigError("\(label) = \(quoted(value)): not supported; \(why)")
            }
            return []
        case .refused(let why)?:
            throw ConfigError("\(label): \(why)")
        case nil:
            guard let spec = optionsByName[key] else {
                throw ConfigError("\(where_): unknown option \(quoted(key))\(suggestion(for: key, style: .ini, extra: Array(uwsgiKeys.keys)))")
            }
            switch spec.role {
            case .help, .version, .ini:
                throw ConfigError("\(where_): '\(key)' cannot be set in an ini file")
            case .setting:
                return [Assignment(spec: spec, value: value, label: label)]
            }
        }
    }
}

/// uWSGI's magic variables of the ini file itself: `%d` its directory (absolute, with a trailing slash),
/// `%p` its absolute path, `%s` its name, `%n` its name without extension, `%e` the extension, `%%` a `%`.
/// Any other `%x`, and `$(VAR)` / `@(file)` (environment, file contents), are refused with one line:
/// taking them literally would silently run with a wrong path or name.
func expandMagicVariables(_ value: String, file: String, label: String) throws(ConfigError) -> String {
    guard value.contains(where: { $0 == "%" || $0 == "$" || $0 == "@" }) else { return value }
    let path = realpath(file, nil).map { p in defer { free(p) }; return String(cString: p) } ?? file
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[...$0]) } ?? "./"
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let dot = name.lastIndex(of: ".")
    let stem = dot.map { String(name[..<$0]) } ?? name
    let ext = dot.map { String(name[name.index(after: $0)...]) } ?? ""
    var out = ""
    var i = value.startIndex
    while i < value.endIndex {
        let c = value[i]
        let next = value.index(after: i)
        let n: Character? = next < value.endIndex ? value[next] : nil
        if (c == "$" || c == "@"), n == "(" {
            throw ConfigError("\(label): \(c)(...) is a uWSGI config variable swsgi does not expand; write the value out")
        }
        if c == "%", let n {
            switch n {
            case "d": out += directory
            case "p": out += path
            case "s": out += name
            case "n": out += stem
            case "e": out += ext
            case "%": out += "%"
            case let x where x.isLetter || x.isNumber:
                throw ConfigError("\(label): %\(n) is a uWSGI magic variable swsgi does not expand (only %d %p %s %n %e %%); write the value out")
            default:  // `%(`, `%[`...: not a variable (log templates use them)
                out.append(c)
                i = next
                continue
            }
            i = value.index(after: next)
            continue
        }
        out.append(c)
        i = next
    }
    return out
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

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
