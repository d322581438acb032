import Glibc

/// What reading a uWSGI config may look at outside its text: files it includes, the environment,
/// `if-exists`/`for-glob` targets, the numbers behind `%k`. Injected so the reader itself does no I/O
/// of its own and tests can hand it a fixed world.
public struct UwsgiConfigWorld {
    public var readFile: (String) throws -> String
    public var environment: [String: String]
    public var exists: (String) -> Bool
    public var isFile: (String) -> Bool
    public var isDirectory: (String) -> Bool
    public var glob: (String) -> [String]
    /// Absolute, symlink-free form of a path (realpath); nil when it cannot be resolved.
    public var absolutePath: (String) -> String?
    public var cores: Int
    public var hostname: String
    public var workingDirectory: String
    /// `@(exec://COMMAND)`: runs COMMAND with `/bin/sh -c` and returns what it printed on stdout.
    public var runCommand: (String) -> UwsgiCommandOutput = { _ in UwsgiCommandOutput(stdout: "", failure: "commands are not run here") }

    public init(readFile: @escaping (String) throws -> String, environment: [String: String], cores: Int,
                exists: @escaping (String) -> Bool = { _ in false },
                isFile: @escaping (String) -> Bool = { _ in false },
                isDirectory: @escaping (String) -> Bool = { _ in false },
                glob: @escaping (String) -> [String] = { _ in [] },
                absolutePath: @escaping (String) -> String? = { _ in nil },
                hostname: String = "localhost", workingDirectory: String = "/") {
        self.readFile = readFile
        self.environment = environment
        self.cores = cores
        self.exists = exists
        self.isFile = isFile
        self.isDirectory = isDirectory
        self.glob = glob
        self.absolutePath = absolutePath
        self.hostname = hostname
        self.workingDirectory = workingDirectory
    }
}

/// What an `@(exec://COMMAND)` printed, and why it failed when it did.
public struct UwsgiCommandOutput: Sendable {
    public var stdout: String
    /// nil for exit status 0; else `exited with status 1`, `was killed by SIGKILL`, `could not start: ...`.
    public var failure: String?
    public init(stdout: String, failure: String?) {
        self.stdout = stdout
        self.failure = failure
    }
}

/// One `key = value` of the wanted section, after the config language has run (includes, `if-*`,
/// `for`, magic variables, `$(ENV)`, `@(file)`, `%(placeholder)`), in uWSGI's order.
struct UwsgiEntry: Equatable {
    var key: String
    var value: String
    /// `app.ini:12`: where the line is.
    let origin: String
    /// Declared with `set-placeholder`: a name for `%(...)`, never an option.
    var isPlaceholder = false
}

/// The bounds that keep a hostile config from exhausting memory or time (each refusal names its bound).
enum UwsgiConfigLimits {
    static let includeDepth = 16
    static let entries = 100_000
    static let fileBytes = 4 << 20
    static let valueBytes = 64 << 10
    static let substitutionsPerValue = 1_000
    static let forTimes = 10_000
}

/// Reads a uWSGI ini file the way uWSGI 2.0 does (core/ini.c, core/config.c, core/utils.c): the whole
/// file is run through the magic table first (`%d %p %s %n %e %c %x %k %h %v %0..%9 %%`; any other
/// `%x` is empty, as in uWSGI), then the lines of the wanted section become options one at a time,
/// the option logic (`if-env`, `for`, `else`, `endif`...) and `ini =` inclusion acting as they arrive;
/// then three passes rewrite every value: `$(ENV)`, `@(file)`, `%(placeholder)`.
/// Problems are collected, not thrown, so `--check` can show every one.
struct UwsgiConfigReader {
    let world: UwsgiConfigWorld
    /// `--check`: a command that fails here leaves its `@(exec://...)` as written, with a warning: it may
    /// need the machine the config is for (as `$(VAR)` does).
    var check = false
    private(set) var entries: [UwsgiEntry] = []
    private(set) var problems: [String] = []
    private(set) var warnings: [String] = []
    /// `--check`: the lines (origins) whose `@(exec://...)` failed here; only their values wait for the start.
    private(set) var failedCommandOrigins: Set<String> = []

    /// The option logic in force: the `if-*`/`for*` that opened it, its argument, where it was opened.
    private struct Logic {
        let kind: String
        let argument: String
        let origin: String
    }
    private var logic: Logic? = nil
    private var ifFailed = false
    /// Files being read, innermost last, as `path:section`: an `ini =` of one of them is a loop.
    private var includeStack: [String] = []
    private var lastFile: String? = nil
    private var tooMany = false
    /// Names used as `%(name)` or by `if-opt`: keys that are placeholders, not options.
    private(set) var referenced: Set<String> = []

    init(world: UwsgiConfigWorld) { self.world = world }

    /// Reads `path` (`file`, `file:section` or `:section` of the last file read), section `uwsgi` by default.
    mutating func read(_ spec: String, from origin: String) {
        var file = spec
        var section = "uwsgi"
        if let colon = lastColonOfSpec(spec) {
            let after = String(spec[spec.index(after: colon)...])
            file = String(spec[..<colon])
            if !after.isEmpty { section = after }
            if file.isEmpty {
                guard let lastFile else {
                    problems.append("\(origin): \(quoted(spec)) names a section of the current file, but no file is being read")
                    return
                }
                file = lastFile
            }
        }
        let key = "\(file):\(section)"
        if includeStack.contains(key) {
            problems.append("\(origin): ini = \(spec) includes itself (\(includeStack.joined(separator: " -> ")) -> \(key)); remove the loop")
            return
        }
        if includeStack.count >= UwsgiConfigLimits.includeDepth {
            problems.append("\(origin): ini = \(spec): more than \(UwsgiConfigLimits.includeDepth) nested includes")
            return
        }
        let text: String
        do {
            text = try world.readFile(file)
        } catch {
            problems.append("\(origin): cannot read \(quoted(file)): \(oneLine("\(error)"))")
            return
        }
        if text.utf8.count > UwsgiConfigLimits.fileBytes {
            problems.append("\(origin): \(quoted(file)) is larger than \(UwsgiConfigLimits.fileBytes >> 20) MiB; not a config file")
            return
        }
        let previousFile = lastFile
        lastFile = file
        includeStack.append(key)
        defer { includeStack.removeLast() }
        let magic = magicTable(file: file, section: section == "uwsgi" && !spec.contains(":") ? nil : section)
        var current: String? = nil
        var gotSection = false
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            if tooMany { return }
            let line = substituteMagic(String(rawLine), magic).trimmingSpaces()
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                var name = line.dropFirst()
                if name.hasSuffix("]") { name = name.dropLast() }
                current = String(name)
                continue
            }
            if line.hasPrefix(";") || line.hasPrefix("#") { continue }
            guard current == section else { continue }
            gotSection = true
            // uWSGI: everything before the first `=` is the key; a line without one is a key with an empty value.
            let keyPart: Substring
            let valuePart: Substring
            if let eq = line.firstIndex(of: "=") {
                keyPart = line[..<eq]
                valuePart = line[line.index(after: eq)...]
            } else {
                keyPart = line
                valuePart = ""
            }
            add(key: String(keyPart.trimmingSpaces()), value: String(valuePart.trimmingSpaces()), origin: "\(file):\(lineNumber)")
        }
        if !gotSection, section != "uwsgi" || includeStack.count > 1 {
            problems.append("\(origin): \(quoted(file)) has no [\(section)] section")
        }
        _ = previousFile
    }

    /// uWSGI's add_exported_option: the option logic first, then immediate options (`ini`, `include`,
    /// logic openers, placeholders), then the entry itself.
    private mutating func add(key: String, value: String, origin: String) {
        if key == "end" || key == "endfor" || key == "endif" || key == "end-if" || key == "end-for" {
            if logic == nil && !ifFailed && key != "end" {
                // uWSGI ignores a stray end; say so only when nothing was open at all.
            }
            logic = nil
            ifFailed = false
            return
        }
        if key == "else" {
            logic = Logic(kind: "else", argument: value, origin: origin)
            return
        }
        if let l = logic {
            runLogic(l, key: key, value: value, origin: origin)
            return
        }
        append(key: key, value: value, origin: origin)
    }

    /// An entry that is not a logic closer: immediate options act now, the rest are kept.
    private mutating func append(key: String, value: String, origin: String) {
        if tooMany { return }
        if entries.count >= UwsgiConfigLimits.entries {
            problems.append("\(origin): more than \(UwsgiConfigLimits.entries) options; a `for` or include that never ends?")
            tooMany = true
            return
        }
        switch key {
        case _ where logicOpeners.contains(key):
            if logic != nil {
                problems.append("\(origin): \(key) inside another if/for block: uWSGI has no nested option logic")
                return
            }
            logic = Logic(kind: key, argument: value, origin: origin)
            ifFailed = false
        case "ini", "include", "inherit":
            entries.append(UwsgiEntry(key: key, value: value, origin: origin))
            if value.isEmpty {
                problems.append("\(origin): \(key) needs a file (or :section)")
                return
            }
            if !value.hasSuffix(".ini") && !value.contains(".ini:") && !value.hasPrefix(":") && value.contains(".") {
                let ext = value.split(separator: ".").last.map(String.init) ?? ""
                if ["yaml", "yml", "json", "xml"].contains(ext) {
                    problems.append("\(origin): \(key) = \(value): swsgi reads ini files only; write it as an ini file")
                    return
                }
            }
            read(value, from: origin)
        case "set-placeholder", "set-ph":
            guard let eq = value.firstIndex(of: "=") else {
                problems.append("\(origin): \(key) = \(quoted(value)): expected NAME=VALUE")
                return
            }
            entries.append(UwsgiEntry(key: String(value[..<eq]), value: String(value[value.index(after: eq)...]), origin: origin, isPlaceholder: true))
        default:
            entries.append(UwsgiEntry(key: key, value: value, origin: origin))
        }
    }

    private mutating func runLogic(_ l: Logic, key: String, value: String, origin: String) {
        let data = l.argument
        func addWith(_ underscore: String?) {
            let v = underscore.map { value.replacingAll("%(_)", with: $0) } ?? value
            append(key: key, value: v, origin: origin)
        }
        func check(_ ok: Bool, _ underscore: String?) {
            if ok { ifFailed = false; addWith(underscore) } else { ifFailed = true }
        }
        // `NAME=VALUE` compares, `NAME` checks presence.
        func lookup(_ get: (String) -> String?) -> (found: String?, matches: Bool, hasValue: Bool) {
            if let eq = data.firstIndex(of: "=") {
                let name = String(data[..<eq]), want = String(data[data.index(after: eq)...])
                let got = get(name)
                return (got, got == want, true)
            }
            let got = get(data)
            return (got, got != nil, false)
        }
        switch l.kind {
        case "if-env":
            let r = lookup { world.environment[$0] }
            check(r.matches, r.found)
        case "if-not-env":
            let r = lookup { world.environment[$0] }
            check(r.found == nil || (r.hasValue && !r.matches), r.found)
        case "if-opt":
            let r = lookup { name in entries.first(where: { $0.key == name })?.value }
            referenced.insert(data.split(separator: "=").first.map(String.init) ?? data)
            check(r.matches, r.found)
        case "if-not-opt":
            let r = lookup { name in entries.first(where: { $0.key == name })?.value }
            referenced.insert(data.split(separator: "=").first.map(String.init) ?? data)
            check(r.found == nil || (r.hasValue && !r.matches), r.found)
        case "if-exists": check(world.exists(data), data)
        case "if-not-exists": check(!world.exists(data), data)
        case "if-file": check(world.isFile(data), data)
        case "if-not-file": check(!world.isFile(data), data)
        case "if-dir", "if-directory": check(world.isDirectory(data), data)
        case "if-not-dir", "if-not-directory": check(!world.isDirectory(data), data)
        case "if-hostname": check(world.hostname == data, data)
        case "if-not-hostname": check(world.hostname != data, data)
        case "if-reload": check(false, nil)
        case "if-not-reload": check(true, nil)
        case "else":
            if ifFailed { addWith(nil) }
        case "for":
            for token in data.split(separator: " ") { addWith(String(token)) }
        case "for-glob":
            let matches = world.glob(data)
            for m in matches.isEmpty ? [data] : matches { addWith(m) }
        case "for-times":
            guard let n = Int(data.trimmingSpaces()), n >= 0 else {
                problems.append("\(l.origin): for-times = \(quoted(data)): not a count")
                return
            }
            guard n <= UwsgiConfigLimits.forTimes else {
                problems.append("\(l.origin): for-times = \(n): more than \(UwsgiConfigLimits.forTimes) rounds")
                logic = Logic(kind: "for", argument: "", origin: l.origin)
                return
            }
            if n > 0 { for i in 1...n { addWith(String(i)) } }
        case "for-readline":
            do {
                let text = try world.readFile(data)
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0) {
                    addWith(String(line))
                }
            } catch {
                // uWSGI logs the open error and carries on with no lines: a file of this machine, not config.
                logic = Logic(kind: "for", argument: "", origin: l.origin)
            }
        default:
            problems.append("\(l.origin): \(l.kind): not supported")
        }
    }

    /// Called when the top-level file is done: an `if`/`for` still open is reported (uWSGI would
    /// silently apply it to whatever follows on its command line).
    mutating func finish() {
        // After the options bound the rest of the file was not read: its endfor/endif never came.
        if let l = logic, l.kind != "else", !tooMany {
            let shown = l.argument.count > 80 ? String(l.argument.prefix(80)) + "..." : l.argument
            problems.append("\(l.origin): \(l.kind) = \(shown) is never closed (add endif/endfor)")
        }
        logic = nil
        expandValues()
    }

    // MARK: Passes over the values

    /// uWSGI's uwsgi_apply_config_pass for `$`, `@` and `%`, in that order, each rescanning a value
    /// after every substitution (bounded here: uWSGI loops forever on `a = %(a)`).
    private mutating func expandValues() {
        for pass in ["$", "@", "%"] as [Character] {
            for i in entries.indices {
                var value = entries[i].value
                var count = 0
                var start = value.startIndex
                while let (range, inner) = nextTag(in: value, symbol: pass, from: start) {
                    count += 1
                    if count > UwsgiConfigLimits.substitutionsPerValue || value.utf8.count > UwsgiConfigLimits.valueBytes {
                        problems.append("\(entries[i].origin): \(entries[i].key): \(pass)(...) expansion does not end (a placeholder that refers to itself?)")
                        value = ""
                        break
                    }
                    let replacement: String?
                    switch pass {
                    case "$": replacement = environmentValue(inner)
                    case "@": replacement = fileValue(inner, origin: entries[i].origin)
                    default: replacement = placeholderValue(inner)
                    }
                    guard let replacement else {
                        start = range.upperBound
                        continue
                    }
                    let offset = value.distance(from: value.startIndex, to: range.lowerBound)
                    value.replaceSubrange(range, with: replacement)
                    // uWSGI rescans from the start; rescanning from the tag is equivalent and linear for literal text.
                    start = value.index(value.startIndex, offsetBy: offset)
                }
                entries[i].value = value
            }
        }
    }

    /// The first `X(...)` (balanced parentheses) at or after `from`.
    private func nextTag(in value: String, symbol: Character, from: String.Index) -> (Range<String.Index>, String)? {
        var i = from
        while i < value.endIndex {
            if value[i] == symbol {
                let open = value.index(after: i)
                if open < value.endIndex, value[open] == "(" {
                    var depth = 0
                    var j = value.index(after: open)
                    while j < value.endIndex {
                        if value[j] == "(" { depth += 1 }
                        if value[j] == ")" {
                            if depth == 0 {
                                let inner = String(value[value.index(after: open)..<j])
                                if inner.isEmpty { break }
                                return (i..<value.index(after: j), inner)
                            }
                            depth -= 1
                        }
                        j = value.index(after: j)
                    }
                }
            }
            i = value.index(after: i)
        }
        return nil
    }

    /// `$(VAR)`, `$(VAR:-default)` (unset or empty), `$(VAR-default)` (unset); nil leaves the text as is.
    private func environmentValue(_ inner: String) -> String? {
        if let r = inner.firstRange(of: ":-") {
            let v = world.environment[String(inner[..<r.lowerBound])]
            return (v == nil || v!.isEmpty) ? String(inner[r.upperBound...]) : v
        }
        if let dash = inner.firstIndex(of: "-") {
            return world.environment[String(inner[..<dash])] ?? String(inner[inner.index(after: dash)...])
        }
        return world.environment[inner]
    }

    /// `@(path)`: the file's text without one final newline. `@(exec://COMMAND)`: what COMMAND prints.
    /// uWSGI's other schemes (core/io.c uwsgi_open_and_read) are refused with what to write instead.
    private mutating func fileValue(_ inner: String, origin: String) -> String? {
        if let r = inner.firstRange(of: "://") {
            let scheme = String(inner[..<r.lowerBound])
            let rest = String(inner[r.upperBound...])
            if scheme == "exec" { return commandValue(rest, origin: origin) }
            if let why = refusedSchemes[scheme] {
                problems.append("\(origin): @(\(inner)): \(why)")
                return nil
            }
            // Not a scheme uWSGI knows (`file://` is none): it opens the text as a file name.
        }
        let text: String
        do {
            text = try world.readFile(inner)
        } catch {
            // uWSGI's uwsgi_open_and_read exits on it. `--check` warns: the file may be on the deploy machine.
            let why = "\(origin): @(\(inner)): cannot read it (\(error))"
            if check { warnings.append(why + "; the value is checked when swsgi starts") } else { problems.append(why) }
            return nil
        }
        return droppingOneFinalNewline(text)
    }

    /// uWSGI's uwsgi_at_file_read: one final `\n` or `\r` byte goes, the rest stays.
    private func droppingOneFinalNewline(_ text: String) -> String {
        var out = text
        if out.hasSuffix("\r\n") {
            // One Character in Swift: uWSGI drops only its last byte.
            out.removeLast()
            out.append("\r")
        } else if out.hasSuffix("\n") || out.hasSuffix("\r") {
            out.removeLast()
        }
        return out
    }

    /// uWSGI's uwsgi_scheme_exec: `/bin/sh -c COMMAND` (stderr and stdin shared), its stdout read to
    /// the end, then uwsgi_at_file_read drops one final `\n` or `\r`. uWSGI ignores the exit status and
    /// goes on with whatever was printed (often nothing); swsgi stops on a failed command instead,
    /// naming it: a log path or a home made of an error's empty output is never what was meant.
    private mutating func commandValue(_ command: String, origin: String) -> String? {
        let result = world.runCommand(command)
        if let failure = result.failure {
            if check {
                warnings.append("\(origin): @(exec://\(command)): the command \(failure) here; the value is checked when swsgi starts")
                failedCommandOrigins.insert(origin)
                return nil
            }
            let shown = result.stdout.isEmpty ? "nothing" : quoted(String(result.stdout.prefix(200)))
            problems.append("\(origin): @(exec://\(command)): the command \(failure) (it printed \(shown)); fix the command or write the value out")
            return nil
        }
        let out = result.stdout
        if out.utf8.count > UwsgiConfigLimits.valueBytes {
            problems.append("\(origin): @(exec://\(command)): the command printed more than \(UwsgiConfigLimits.valueBytes >> 10) KiB; not a value")
            return nil
        }
        return droppingOneFinalNewline(out)
    }

    /// `%(name)`: the first value given for `name`; `%(a b + 1)`: uWSGI's pipeline (concatenation,
    /// then + - * / on 64-bit integers, `++`/`--`). nil (unknown name) leaves the text as is.
    private mutating func placeholderValue(_ inner: String) -> String? {
        guard inner.contains(" ") else {
            referenced.insert(inner)
            return entries.first(where: { $0.key == inner })?.value
        }
        enum Op { case concat, sum, sub, mul, div }
        var op = Op.concat
        var current: String? = nil
        for token in inner.split(separator: " ").map(String.init) {
            let value: String
            switch token {
            case "+": op = .sum; continue
            case "-": op = .sub; continue
            case "*": op = .mul; continue
            case "/": op = .div; continue
            case "++", "--":
                if let c = current { current = String(leadingInteger(c) &+ (token == "++" ? 1 : -1)) }
                op = .concat
                continue
            default:
                if !isNumber(token) { referenced.insert(token) }
                value = isNumber(token) ? token : (entries.first(where: { $0.key == token })?.value ?? "")
            }
            let a = leadingInteger(current ?? ""), b = leadingInteger(value)
            switch op {
            case .concat: current = (current ?? "") + value
            // Saturating, where uWSGI's int64 would wrap: a number too large stays too large.
            case .sum: current = String(saturating(a.addingReportingOverflow(b), a > 0 || b > 0))
            case .sub: current = String(saturating(a.subtractingReportingOverflow(b), a > 0))
            case .mul: current = String(saturating(a.multipliedReportingOverflow(by: b), (a < 0) == (b < 0)))
            case .div: current = String(b == 0 ? 0 : (a == Int64.min && b == -1 ? Int64.max : a / b))
            }
            // uWSGI keeps the operator: `a + b c` adds c too.
        }
        return current ?? ""
    }

    // MARK: Magic variables

    /// uWSGI's magic table for one config file (core/uwsgi.c config_magic_table_fill and the globals
    /// set before configuring): every `%` + character has an entry, most of them empty.
    private func magicTable(file: String, section: String?) -> [Character: String] {
        var t: [Character: String] = ["%": "%", "(": "%("]
        let full = world.absolutePath(file) ?? (file.hasPrefix("/") ? file : world.workingDirectory + "/" + file)
        let slash = full.lastIndex(of: "/")
        let name = slash.map { String(full[full.index(after: $0)...]) } ?? full
        let dir = slash.map { String(full[...$0]) } ?? "./"
        t["o"] = file
        t["p"] = full
        t["s"] = name
        t["d"] = dir
        let dirNoSlash = dir.hasSuffix("/") && dir.count > 1 ? String(dir.dropLast()) : dir
        t["c"] = dirNoSlash.split(separator: "/").last.map(String.init) ?? ""
        for (i, part) in dirNoSlash.split(separator: "/").prefix(10).enumerated() {
            t[Character(String(i))] = String(part)
        }
        if let dot = name.lastIndex(of: ".") {
            t["e"] = String(name[name.index(after: dot)...])
            t["n"] = String(name[..<dot])
        } else {
            t["n"] = name
        }
        t["x"] = section ?? ""
        t["k"] = String(world.cores)
        t["h"] = world.hostname
        t["v"] = world.workingDirectory
        t["V"] = "2.0.31"
        t["u"] = String(getuid())
        t["g"] = String(getgid())
        // Upper-case twins name the first file read.
        for (lower, upper) in [("o", "O"), ("d", "D"), ("s", "S"), ("p", "P"), ("c", "C"), ("e", "E"), ("n", "N"), ("x", "X")] as [(Character, Character)] {
            t[upper] = t[lower]
        }
        return t
    }

    private func substituteMagic(_ line: String, _ table: [Character: String]) -> String {
        guard line.contains("%") else { return line }
        var out = ""
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            let next = line.index(after: i)
            if c == "%", next < line.endIndex {
                out += table[line[next]] ?? ""
                i = line.index(after: next)
                continue
            }
            out.append(c)
            i = next
        }
        return out
    }

    /// `file:section`: the last `:` that is not part of a scheme (`http://`) and not a Windows drive.
    private func lastColonOfSpec(_ spec: String) -> String.Index? {
        guard let colon = spec.lastIndex(of: ":") else { return nil }
        let after = spec[spec.index(after: colon)...]
        if after.hasPrefix("//") || after.contains("/") { return nil }
        return colon
    }
}

/// uWSGI's `@(scheme://...)` sources other than `exec` (core/io.c uwsgi_setup_schemes), and why each is refused.
private let refusedSchemes: [String: String] = [
    "http": "swsgi fetches no URLs while reading its config (uWSGI does, with its own HTTP client); fetch it with a command: @(exec://curl -fsS URL)",
    "sym": "reads a symbol linked into the uWSGI binary; swsgi has none: write the value out",
    "section": "reads an ELF section of the uWSGI binary; swsgi has none: write the value out",
    "data": "reads data appended to the uWSGI binary; swsgi has none: write the value out",
    "call": "calls a C function linked into the uWSGI binary; swsgi has none: write the value out",
    "callint": "calls a C function linked into the uWSGI binary; swsgi has none: write the value out",
    "emperor": "reads from uWSGI's Emperor, which swsgi does not have: write the value out",
    "fd": "reads an inherited file descriptor to its end; swsgi does not: use @(FILE) or @(exec://COMMAND)",
    "file": "uWSGI has no file:// scheme (it would try to open a file named 'file://...'); write @(/path/to/file)",
]

/// The option-logic openers uWSGI knows (core/uwsgi.c): each takes the lines up to endif/endfor.
let logicOpeners: Set<String> = [
    "if-env", "if-not-env", "if-opt", "if-not-opt", "if-exists", "if-not-exists", "if-file", "if-not-file",
    "if-dir", "if-not-dir", "if-directory", "if-not-directory", "if-hostname", "if-not-hostname",
    "if-reload", "if-not-reload", "for", "for-glob", "for-times", "for-readline",
]

private func isNumber(_ s: String) -> Bool {
    let digits = s.hasPrefix("-") ? s.dropFirst() : Substring(s)
    return !digits.isEmpty && digits.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

private func saturating(_ r: (partialValue: Int64, overflow: Bool), _ positive: Bool) -> Int64 {
    r.overflow ? (positive ? Int64.max : Int64.min) : r.partialValue
}

/// strtoll: the leading integer, 0 when there is none, clamped on overflow.
private func leadingInteger(_ s: String) -> Int64 {
    var t = Substring(s.trimmingSpaces())
    var negative = false
    if t.hasPrefix("-") || t.hasPrefix("+") { negative = t.first == "-"; t = t.dropFirst() }
    var v: Int64 = 0
    for u in t.utf8 {
        guard u >= 0x30 && u <= 0x39 else { break }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(u - 0x30))
        if o1 || o2 { return negative ? Int64.min : Int64.max }
        v = a
    }
    return negative ? -v : v
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension UwsgiConfigWorld {
    /// This machine: files, environment, glob, realpath.
    public static func live(environment: [String], cores: Int, readFile: @escaping (String) throws -> String,
                            runCommand: @escaping (String) -> UwsgiCommandOutput) -> UwsgiConfigWorld {
        var env: [String: String] = [:]
        for entry in environment {
            if let eq = entry.firstIndex(of: "=") { env[String(entry[..<eq])] = String(entry[entry.index(after: eq)...]) }
        }
        var host = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&host, 255) == 0 ? String(cString: host) : "localhost"
        var cwdBuffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let cwd = getcwd(&cwdBuffer, cwdBuffer.count) != nil ? String(cString: cwdBuffer) : "/"
        // A FIFO (or a device) as `ini =`, `@(...)` or `for-readline` would block or never end: regular files only.
        let regularOnly: (String) throws -> String = { path in
            var st = stat()
            if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
                throw ConfigError("\(path): not a regular file")
            }
            return try readFile(path)
        }
        var world = UwsgiConfigWorld(
            readFile: regularOnly, environment: env, cores: cores,
            exists: { access($0, F_OK) == 0 },
            isFile: { p in var st = stat(); return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG },
            isDirectory: { p in var st = stat(); return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR },
            glob: { pattern in
                var g = glob_t()
                defer { globfree(&g) }
                guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
                return (0..<Int(g.gl_pathc)).prefix(UwsgiConfigLimits.forTimes).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
            },
            absolutePath: { p in realpath(p, nil).map { r in defer { free(r) }; return String(cString: r) } },
            hostname: hostname, workingDirectory: cwd)
        world.runCommand = runCommand
        return world
    }
}
