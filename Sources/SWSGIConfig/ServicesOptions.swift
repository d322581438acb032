/// Options for the services swsgi's master offers apps (issue 13): caches, locks, mules, log
/// encoders and hooks. Pure parsing; `ServicesOptionTable.swift` wires them into the option table.

/// One `--cache2 name=NAME,items=N,blocksize=B,keysize=K`.
public struct CacheOptions: Equatable, Sendable {
    public var name: String
    /// Entries the cache holds at most.
    public var items: Int
    /// Largest value in bytes (one block per item, as uWSGI's cache2 without a bitmap).
    public var blockSizeBytes: Int
    /// Largest key in bytes.
    public var keySizeBytes: Int
    public init(name: String, items: Int, blockSizeBytes: Int = 65536, keySizeBytes: Int = 2048) {
        self.name = name
        self.items = items
        self.blockSizeBytes = blockSizeBytes
        self.keySizeBytes = keySizeBytes
    }

    /// Parses uWSGI's keyval syntax. Unknown keys are refused, not ignored.
    static func parse(_ text: String) throws(ValueProblem) -> CacheOptions {
        var name: String? = nil
        var items: Int? = nil
        var block = 65536, key = 2048
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[0].isEmpty else {
                throw ValueProblem("\(quoted(text)): expected name=NAME,items=N[,blocksize=BYTES][,keysize=BYTES], got \(quoted(String(part)))")
            }
            let value = String(kv[1])
            switch kv[0] {
            case "name":
                // Names appear in JSON stats and Prometheus labels: keep them to characters neither escapes.
                guard !value.isEmpty, value.utf8.count <= 64, value.unicodeScalars.allSatisfy({
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_-.:".unicodeScalars.contains($0)
                }) else {
                    throw ValueProblem("\(quoted(text)): the cache name must be 1-64 letters, digits, '_', '-', '.' or ':'")
                }
                name = value
            case "items", "maxitems": items = try ValueParser<Int>.int(1...16_777_216).parse(value)
            case "blocksize": block = try ValueParser<Int>.bytes(8...(64 << 20)).parse(value)
            case "keysize": key = try ValueParser<Int>.bytes(1...65535).parse(value)
            default:
                throw ValueProblem("\(quoted(text)): unknown cache setting \(quoted(String(kv[0]))) (known: name, items, blocksize, keysize)")
            }
        }
        guard let name else { throw ValueProblem("\(quoted(text)): name=NAME is missing") }
        guard let items else { throw ValueProblem("\(quoted(text)): items=N is missing") }
        let (total, overflow) = items.multipliedReportingOverflow(by: block + key + 64)
        if overflow || total > 1 << 36 {
            throw ValueProblem("\(quoted(text)): \(items) items of \(block + key) bytes is above the 64 GiB limit")
        }
        return CacheOptions(name: name, items: items, blockSizeBytes: block, keySizeBytes: key)
    }
}

/// One `--mule` (serves registered functions and messages) or `--mule=FILE` (runs the loop
/// registered for FILE; for Python apps, the script).
public enum MuleOptions: Equatable, Sendable {
    case dispatcher
    case file(String)

    static func parse(_ text: String) -> MuleOptions { text.isEmpty || text == "true" ? .dispatcher : .file(text) }
}

/// `${name}` (encoders) / `%(name)` (request log format) placeholders in a log template.
public enum LogTemplate {
    /// The log encoders' variables (core/logging.c, uwsgi_log_encoder_format), plus swsgi's `time`, `pid`, `worker`.
    /// `strftime:FORMAT` is checked apart.
    public static let serverVariables: Set<String> = ["msg", "msgnl", "unix", "micros", "millis", "pid", "worker", "time"]

    public enum Syntax: Sendable { case dollar, percent }

    /// Splits a template into literal text and variable names; `known` says which names are allowed.
    static func parts(_ template: String, syntax: Syntax, known: (String) throws(ValueProblem) -> Bool) throws(ValueProblem) -> [Part] {
        var out: [Part] = []
        var literal = ""
        var chars = Array(template)
        var i = 0
        chars.append("\0")
        while i < chars.count - 1 {
            let c = chars[i]
            let opens = syntax == .dollar ? c == "$" && chars[i + 1] == "{" : c == "%" && chars[i + 1] == "("
            if opens {
                let close: Character = syntax == .dollar ? "}" : ")"
                // uWSGI leaves an unclosed placeholder as text.
                guard let end = chars[(i + 2)...].firstIndex(of: close), end < chars.count - 1 else {
                    literal.append(contentsOf: chars[i..<(chars.count - 1)])
                    break
                }
                let name = String(chars[(i + 2)..<end])
                guard try known(name) else {
                    throw ValueProblem("\(quoted(template)): unknown variable \(quoted(name))")
                }
                if !literal.isEmpty { out.append(.literal(literal)); literal = "" }
                out.append(.variable(name))
                i = end + 1
                continue
            }
            literal.append(c)
            i += 1
        }
        if !literal.isEmpty { out.append(.literal(literal)) }
        return out
    }

    /// A template already checked at start-up, split again where it is used.
    public static func parsed(_ template: String, syntax: Syntax) -> [Part] {
        (try? parts(template, syntax: syntax) { _ in true }) ?? [.literal(template)]
    }

    /// An encoder template: `${msg}`, `${unix}`, `${strftime:%Y-%m-%d}`...
    static func encoderParts(_ template: String) throws(ValueProblem) -> [Part] {
        try parts(template, syntax: .dollar) { serverVariables.contains($0) || $0.hasPrefix("strftime:") }
    }

    public enum Part: Equatable, Sendable {
        case literal(String)
        case variable(String)
    }
}

/// When a hook runs (`--hook-PHASE`): uWSGI's phase names.
public enum HookPhase: String, CaseIterable, Sendable {
    /// First thing, before the configuration is acted on.
    case asap
    /// Before the app is loaded.
    case preApp = "pre-app"
    /// After the app is loaded, before binding.
    case postApp = "post-app"
    /// Once the listener is bound and queues connections, before the workers are forked (the master
    /// runs every hook, so a failure still stops start-up before anything is served).
    case accepting
}

/// What a hook does.
public enum HookAction: Equatable, Sendable, CustomStringConvertible {
    /// `/bin/sh -c CMD`; a non-zero status fails the hook.
    case exec(String)
    case mkdir(String)
    case unlink(String)
    /// `write:PATH TEXT`: creates or truncates PATH.
    case write(path: String, text: String)
    case print(String)

    static func parse(_ text: String) throws(ValueProblem) -> HookAction {
        guard let colon = text.firstIndex(of: ":") else {
            throw ValueProblem("\(quoted(text)): expected ACTION:ARG with ACTION one of exec, mkdir, unlink, write, print")
        }
        let action = String(text[..<colon]), arg = String(text[text.index(after: colon)...])
        if arg.utf8.contains(0) { throw ValueProblem("\(quoted(text)) contains a NUL byte") }
        switch action {
        case "exec": return .exec(try nonEmpty(arg, text))
        case "mkdir": return .mkdir(try nonEmpty(arg, text))
        case "unlink": return .unlink(try nonEmpty(arg, text))
        case "print": return .print(arg)
        case "write":
            let pieces = arg.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            return .write(path: try nonEmpty(String(pieces[0]), text), text: pieces.count > 1 ? String(pieces[1]) : "")
        default:
            throw ValueProblem("\(quoted(text)): unknown hook action \(quoted(action)) (known: exec, mkdir, unlink, write, print)")
        }
    }

    private static func nonEmpty(_ s: String, _ text: String) throws(ValueProblem) -> String {
        if s.isEmpty { throw ValueProblem("\(quoted(text)): the action needs an argument") }
        return s
    }

    public var description: String {
        switch self {
        case .exec(let c): "exec:\(c)"
        case .mkdir(let p): "mkdir:\(p)"
        case .unlink(let p): "unlink:\(p)"
        case .write(let p, let t): "write:\(p) \(t)"
        case .print(let t): "print:\(t)"
        }
    }
}

/// One hook: a phase and an action.
public struct Hook: Equatable, Sendable {
    public let phase: HookPhase
    public let action: HookAction
    public init(phase: HookPhase, action: HookAction) {
        self.phase = phase
        self.action = action
    }
}
