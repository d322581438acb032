/// One option given somewhere, not yet parsed: `label` names where, for error messages.
struct Assignment {
    let spec: OptionSpec
    let value: String
    /// `--processes`, `SWSGI_PROCESSES`, `app.ini:12: processes`.
    let label: String

    func apply(to options: inout ServerOptions) throws(ConfigError) {
        guard case .setting(let set) = spec.role else { return }
        do {
            try set(&options, value)
        } catch {
            throw ConfigError("\(label): \(error.message)")
        }
    }
}

/// The options that configure a listener (see `ServerOptions.listeners`).
let listenerOptionNames: Set<String> = ["socket", "http-socket", "uwsgi-socket"]

/// The ini file to read and how to name its origin in errors.
struct IniSource {
    let path: String
    let label: String
}

extension ServerOptions {
    /// Loads the configuration: defaults < `--ini FILE` < `SWSGI_*` environment variables < command line,
    /// then `validate()`s it. Every problem of the ini file and of the values is reported at once, one
    /// line each, before the cross-option rules.
    ///
    /// - Parameters:
    ///   - arguments: the command line without the program name (`CommandLine.arguments.dropFirst()`).
    ///   - environment: `NAME=VALUE` entries; `SWSGI_*` ones are options, all of them feed `$(VAR)`.
    ///   - cores: default for `--processes`, and uWSGI's `%k`.
    ///   - readFile: returns the text of the ini file at a path; its error is quoted in the `ConfigError`.
    public static func load(
        arguments: [String], environment: [String], cores: Int, readFile: (String) throws -> String
    ) throws(ConfigError) -> LoadResult {
        try withoutActuallyEscaping(readFile) { (escapable) throws(ConfigError) -> LoadResult in
            var env: [String: String] = [:]
            for entry in environment {
                if let eq = entry.firstIndex(of: "=") { env[String(entry[..<eq])] = String(entry[entry.index(after: eq)...]) }
            }
            let world = UwsgiConfigWorld(readFile: escapable, environment: env, cores: cores)
            return try load(arguments: arguments, environment: environment, world: world)
        }
    }

    /// `load` with the files, environment and machine facts a uWSGI config may consult (`UwsgiConfigWorld.live`).
    public static func load(arguments: [String], environment: [String], world: UwsgiConfigWorld) throws(ConfigError) -> LoadResult {
        let commandLine: [Assignment]
        var ini: IniSource? = nil
        var check = false
        switch try parseCommandLine(arguments) {
        case .help: return .help
        case .version: return .version
        case .assignments(let a, let iniPath, let checkOnly):
            commandLine = a
            check = checkOnly
            if let iniPath { ini = IniSource(path: iniPath, label: "--ini") }
        }
        let (fromEnvironment, environmentIni) = try parseEnvironment(environment)
        if ini == nil, let environmentIni { ini = IniSource(path: environmentIni, label: "SWSGI_INI") }

        var problems: [String] = []
        var fromIni: [Assignment] = []
        var notes: [String] = []
        var warnings: [String] = []
        var uwsgiSection = false
        if let ini {
            (fromIni, notes) = readIni(ini, world: world, check: check, problems: &problems, warnings: &warnings,
                                       uwsgiSection: &uwsgiSection)
        }

        var options = ServerOptions(cores: world.cores)
        var resolved: [String] = []
        // Listeners accumulate within one source (uWSGI's repeated `socket =` lines), but a higher source
        // replaces a lower one's: `--socket` on the command line moves the server, it does not add a listener.
        var listenersFromLowerSource = false
        for source in [fromIni, fromEnvironment, commandLine] {
            var listenersHere = false
            for a in source {
                if listenerOptionNames.contains(a.spec.name) {
                    if listenersFromLowerSource && !listenersHere { (options.socket, options.httpSocket, options.uwsgiSocket) = ([], [], []) }
                    listenersHere = true
                }
                do {
                    try a.apply(to: &options)
                    resolved.append("\(a.spec.name) = \(a.value)")
                    resolved[resolved.count - 1] += String(repeating: " ", count: max(1, 48 - resolved[resolved.count - 1].count)) + "; \(a.label)"
                } catch {
                    problems.append(error.message)
                }
            }
            listenersFromLowerSource = listenersFromLowerSource || listenersHere
        }
        if !problems.isEmpty { throw ConfigError(problems.joined(separator: "\n")) }
        if uwsgiSection, let label = fromIni.last(where: { $0.spec.name == "cheaper-initial" })?.label {
            options.adjustCheaperInitialAsUwsgi(label: label, warnings: &warnings)
        }
        if !options.python.enableThreads, let a = (fromIni + fromEnvironment + commandLine).last(where: { $0.spec.name == "enable-threads" }) {
            warnings.append("\(a.label) = false: threads the app starts still run between requests (swsgi releases the GIL whenever a worker waits); "
                            + "uWSGI's false stops them while the worker is idle (it keeps the GIL): a difference in the app's favour")
        }
        options.configWarnings = warnings + options.python.appSpecWarnings
        do {
            try options.validate()
        } catch {
            // A config file checked alone may leave the app to the command line (`uwsgi --ini app.ini
            // --module app`, uWSGI's users' habit): check the rest as if it were given, and say so.
            guard check, !options.python.isConfigured, options.app == nil, options.appLibrary == nil else { throw error }
            var withApp = options
            withApp.python.module = "app"
            try withApp.validate()
            notes.append("; no app (module, wsgi-file) given: the rest is checked as if one were given when swsgi starts; without it: \(error.message)")
        }
        let report = (resolved + notes).joined(separator: "\n") + "\n"
        if check { return .check(options, report: report) }
        if options.showConfig { options.showConfigText = report }
        return .run(options)
    }

    /// The ini file's assignments and the notes on uWSGI keys accepted without an option behind them.
    /// `FILE:SECTION` reads that section (uWSGI's `--ini app.ini:prod`).
    static func readIni(_ ini: IniSource, world: UwsgiConfigWorld, check: Bool, problems: inout [String],
                        warnings: inout [String], uwsgiSection: inout Bool) -> ([Assignment], [String]) {
        var path = ini.path
        var section: String? = nil
        if let colon = path.lastIndex(of: ":"), !path[path.index(after: colon)...].contains("/"), colon != path.startIndex {
            section = String(path[path.index(after: colon)...])
            path = String(path[..<colon])
        }
        let text: String
        do {
            text = try world.readFile(path)
        } catch {
            problems.append("\(ini.label) \(quoted(path)): cannot read the file: \(oneLine("\(error)"))")
            return ([], [])
        }
        let sections = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { $0.trimmingSpaces() }
            .filter { $0.hasPrefix("[") && $0.hasSuffix("]") && $0.count >= 2 }.map { String($0.dropFirst().dropLast().trimmingSpaces()) }
        if section == nil, sections.contains("swsgi") || !sections.contains("uwsgi") {
            do {
                return (try parseIni(text, file: path), [])
            } catch {
                problems.append(error.message)
                return ([], [])
            }
        }
        uwsgiSection = true
        return uwsgiAssignments(file: path, section: section, world: world, check: check, problems: &problems, warnings: &warnings)
    }

    // MARK: Command line

    enum CommandLineResult {
        case help, version
        case assignments([Assignment], ini: String?, check: Bool)
    }

    /// Splits `--name value`, `--name=value` and lone booleans into assignments. `--help` and
    /// `--version` win over any error in the rest of the line.
    static func parseCommandLine(_ args: [String]) throws(ConfigError) -> CommandLineResult {
        var assignments: [Assignment] = []
        var ini: String? = nil
        var check = false
        var firstError: ConfigError? = nil
        func fail(_ message: String) {
            if firstError == nil { firstError = ConfigError(message) }
        }
        var i = 0
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg == "-h" { return .help }
            guard arg.hasPrefix("--"), arg.count > 2 else {
                if arg.hasPrefix("-"), arg.count > 1 {
                    let name = String(arg.drop(while: { $0 == "-" }).prefix(while: { $0 != "=" }))
                    fail("unknown option \(quoted(arg))\(suggestion(for: name, style: .commandLine)); options are spelled --name")
                } else {
                    fail("unexpected argument \(quoted(arg)): swsgi takes only --options (see --help)")
                }
                continue
            }
            var name = String(arg.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            let flag = "--\(name)"
            guard let spec = optionsByName[name] else {
                fail("unknown option \(quoted(flag))\(suggestion(for: name, style: .commandLine))")
                continue
            }
            switch spec.role {
            case .help, .version:
                if inline != nil {
                    fail("\(flag) takes no value")
                    continue
                }
                if case .help = spec.role { return .help }
                return .version
            case .check:
                if inline != nil {
                    fail("\(flag) takes no value")
                } else {
                    check = true
                }
                continue
            case .ini, .setting:
                break
            }
            let value: String
            if let inline {
                value = inline
            } else if spec.optionalValue, i < args.count, !args[i].hasPrefix("--") {
                value = args[i]
                i += 1
            } else if spec.isBoolean || spec.optionalValue {
                value = "true"
            } else if i < args.count, !args[i].hasPrefix("--") {
                value = args[i]
                i += 1
            } else {
                let got = i < args.count ? " (got \(quoted(args[i])); write \(flag)=VALUE for a value starting with --)" : ""
                fail("\(flag) needs a value\(got)")
                continue
            }
            if case .ini = spec.role {
                if value.isEmpty || value.utf8.contains(0) {
                    fail("--ini: \(quoted(value)) is not a file path")
                } else {
                    ini = value
                }
                continue
            }
            assignments.append(Assignment(spec: spec, value: value, label: flag))
        }
        if let firstError { throw firstError }
        return .assignments(assignments, ini: ini, check: check)
    }

    // MARK: Environment

    /// `SWSGI_*` entries as assignments, and SWSGI_INI. Unknown `SWSGI_*` names are errors.
    static func parseEnvironment(_ environment: [String]) throws(ConfigError) -> ([Assignment], ini: String?) {
        var assignments: [Assignment] = []
        var ini: String? = nil
        for entry in environment where entry.hasPrefix("SWSGI_") {
            let key: String
            let value: String
            if let eq = entry.firstIndex(of: "=") {
                key = String(entry[..<eq])
                value = String(entry[entry.index(after: eq)...])
            } else {
                key = entry
                value = ""
            }
            guard let spec = optionsByEnvironmentName[key] else {
                let name = String(key.dropFirst("SWSGI_".count)).lowercased().replacingUnderscores()
                throw ConfigError("\(oneLine(key)): unknown swsgi setting\(suggestion(for: name, style: .environment))")
            }
            switch spec.role {
            case .help, .version, .check:
                throw ConfigError("\(key): --\(spec.name) is a command-line flag only")
            case .ini:
                if value.isEmpty || value.utf8.contains(0) {
                    throw ConfigError("SWSGI_INI: \(quoted(value)) is not a file path")
                }
                ini = value
            case .setting:
                assignments.append(Assignment(spec: spec, value: value, label: key))
            }
        }
        return (assignments, ini)
    }

    // MARK: ini file

    /// The `[swsgi]` section of an ini file as assignments; other sections are ignored. (A file with
    /// only `[uwsgi]` goes through `uwsgiAssignments` instead.)
    static func parseIni(_ text: String, file: String) throws(ConfigError) -> [Assignment] {
        var assignments: [Assignment] = []
        var section: String? = nil
        let wanted = "swsgi"
        var lineNumber = 0
        // "\r\n" is one Character, so CRLF files split on it too.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let where_ = "\(file):\(lineNumber)"
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix(";") || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count >= 2 else {
                    throw ConfigError("\(where_): malformed section header \(quoted(String(line))) (expected [swsgi])")
                }
                section = String(line.dropFirst().dropLast().trimmingSpaces())
                continue
            }
            guard let section else {
                throw ConfigError("\(where_): \(quoted(String(line))) is outside any section; put options under [swsgi]")
            }
            if section != wanted { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError("\(where_): malformed line \(quoted(String(line))) (expected key = value)")
            }
            let key = String(line[..<eq].trimmingSpaces())
            let value = String(line[line.index(after: eq)...].trimmingSpaces())
            if key.isEmpty {
                throw ConfigError("\(where_): malformed line \(quoted(String(line))) (no key before =)")
            }
            guard let spec = optionsByName[key] else {
                throw ConfigError("\(where_): unknown option \(quoted(key))\(suggestion(for: key, style: .ini))")
            }
            switch spec.role {
            case .help, .version, .ini, .check:
                throw ConfigError("\(where_): '\(key)' cannot be set in an ini file")
            case .setting:
                assignments.append(Assignment(spec: spec, value: value, label: "\(where_): \(key)"))
            }
        }
        return assignments
    }
}

/// `SWSGI_HARAKIRI_GRACEFUL_TIMEOUT` (or an alias's) to its row.
let optionsByEnvironmentName: [String: OptionSpec] = {
    var byName: [String: OptionSpec] = [:]
    for spec in optionTable {
        for name in spec.names { byName[OptionSpec.environmentName(name)] = spec }
    }
    return byName
}()

// MARK: Suggestions

enum NameStyle { case commandLine, environment, ini }

/// ` (did you mean '--processes'?)` for a near miss, else "".
func suggestion(for typed: String, style: NameStyle, extra: [String] = []) -> String {
    let normalized = typed.lowercased().replacingUnderscores()
    guard normalized.utf8.count <= 64 else { return "" }
    var best: (name: String, distance: Int)? = nil
    for spec in optionTable {
        switch (spec.role, style) {
        case (.help, .commandLine), (.version, .commandLine), (.check, .commandLine), (.ini, .commandLine), (.ini, .environment), (.setting, _):
            break
        default:
            continue
        }
        for name in spec.names {
            let d = editDistance(normalized, name)
            if d < (best?.distance ?? Int.max) { best = (name, d) }
        }
    }
    for name in extra {
        let d = editDistance(normalized, name)
        if d < (best?.distance ?? Int.max) { best = (name, d) }
    }
    guard let best, best.distance <= (best.name.count >= 12 ? 3 : 2) else { return "" }
    switch style {
    case .commandLine: return " (did you mean '--\(best.name)'?)"
    case .environment: return " (did you mean '\(OptionSpec.environmentName(best.name))'?)"
    case .ini: return " (did you mean '\(best.name)'?)"
    }
}

/// Levenshtein distance over Unicode scalars.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

// MARK: Text helpers

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and carriage returns.
    func trimmingSpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        let end = lastIndex(where: { !isSpace($0) })!
        return self[start...end]
    }

    func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}

/// Control characters flattened to spaces so an error stays one line.
func oneLine(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map {
        $0.properties.generalCategory == .control ? " " : $0
    }))
}

extension ServerOptions {
    /// uWSGI's sanitize_args (core/init.c) for a `[uwsgi]` section's `cheaper-initial`: without `cheaper`
    /// cheaper mode is off and the value has no effect; below `cheaper` it becomes `cheaper`, above
    /// `processes` it becomes `processes`, each with a warning. (swsgi's own flags refuse these.)
    mutating func adjustCheaperInitialAsUwsgi(label: String, warnings: inout [String]) {
        guard let initial = cheaperInitial else { return }
        if cheaper == 0 {
            warnings.append("\(label) = \(initial): no effect without cheaper (cheaper mode is off, as in uWSGI): all \(processes) processes start")
            cheaperInitial = nil
        } else if cheaper < processes, !(cheaper...processes).contains(initial) {
            let used = min(max(initial, cheaper), processes)
            warnings.append("\(label) = \(initial): must be between cheaper (\(cheaper)) and processes (\(processes)): using \(used), as uWSGI does")
            cheaperInitial = used
        }
    }
}
