import Common
/// Why one value was refused; the caller prefixes where it came from.
struct ValueProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Turns the text of one option's value into its typed value.
struct ValueParser<Value>: Sendable {
    let parse: @Sendable (String) throws(ValueProblem) -> Value
}

/// `'text'` for messages: control characters escaped, long values cut, so an error stays one line.
func quoted(_ text: String) -> String {
    var out = ""
    var count = 0
    for scalar in text.unicodeScalars {
        if count == 200 { out += "…"; break }
        if scalar.properties.generalCategory == .control || scalar == "'" {
            out += scalar.escaped(asASCII: false)
        } else {
            out.unicodeScalars.append(scalar)
        }
        count += 1
    }
    return "'\(out)'"
}

private func isDigits<S: StringProtocol>(_ s: S) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

private func checkRange(_ text: String, _ v: Int, _ range: ClosedRange<Int>, unit: String = "") throws(ValueProblem) {
    guard !range.contains(v) else { return }
    if range.upperBound == Int.max {
        throw ValueProblem("\(quoted(text)) is too small: the minimum is \(range.lowerBound)\(unit)")
    }
    throw ValueProblem("\(quoted(text)) is out of range: it must be between \(range.lowerBound) and \(range.upperBound)\(unit)")
}

/// Rejects text C cannot take (NUL bytes).
private func checkNoNUL(_ text: String) throws(ValueProblem) {
    if text.utf8.contains(0) { throw ValueProblem("\(quoted(text)) contains a NUL byte") }
}

extension ValueParser where Value == Int {
    /// A whole number within `range`.
    static func int(_ range: ClosedRange<Int>) -> ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> Int in
            let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
            guard isDigits(digits) else { throw ValueProblem("\(quoted(text)) is not a whole number") }
            guard let v = Int(text) else { throw ValueProblem("\(quoted(text)) is too large") }
            try checkRange(text, v, range)
            return v
        }
    }

    /// A byte size: `8192`, `8k`, `64m`, `1g` (1024-based, either case), within `range` bytes.
    static func bytes(_ range: ClosedRange<Int>) -> ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> Int in
            var number = Substring(text)
            var factor = 1
            if let last = number.last {
                switch last {
                case "k", "K": factor = 1 << 10
                case "m", "M": factor = 1 << 20
                case "g", "G": factor = 1 << 30
                default: break
                }
                if factor != 1 { number = number.dropLast() }
            }
            guard isDigits(number) else {
                throw ValueProblem("\(quoted(text)) is not a byte size (a whole number, optionally with k, m or g: 8192, 8k, 64m)")
            }
            guard let n = Int(number) else { throw ValueProblem("\(quoted(text)) is too large") }
            let (v, overflow) = n.multipliedReportingOverflow(by: factor)
            if overflow { throw ValueProblem("\(quoted(text)) is too large") }
            try checkRange(text, v, range, unit: " bytes")
            return v
        }
    }
}

extension ValueParser where Value == UInt64 {
    /// A duration in the grammar both programs share (`30`, `0.5`, `250ms`, `2m`), as nanoseconds.
    /// Negative values are refused, and 0 if `positive`.
    static func seconds(positive: Bool = false) -> ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> UInt64 in
            let total: UInt64
            switch parseDurationChecked(text) {
            case .success(let ns): total = ns
            case .failure(.negative): throw ValueProblem("\(quoted(text)) is negative: durations are seconds >= 0")
            case .failure(.notADuration): throw ValueProblem("\(quoted(text)) is not a duration (seconds like 30 or 0.5, or with a unit: 250ms, 2s, 1m)")
            case .failure(.tooLarge): throw ValueProblem("\(quoted(text)) is too large: the maximum is \(maxDurationSeconds) seconds")
            }
            if positive && total == 0 { throw ValueProblem("\(quoted(text)) must be above 0") }
            return total
        }
    }
}

/// The signal's number, from `TERM`, `SIGTERM`, `term` or `15`: the names Linux gives (no real-time numbers).
func signalNumber(_ text: String) -> Int32? {
    guard let n = SignalName.parse(text), SignalName.table.contains(where: { $0.number == n }) else { return nil }
    return n
}

/// Signals between swsgi's master and its workers (HUP retire, INT/QUIT exit now, USR1 drain): an app
/// handler on one of them would stop the master from retiring or stopping the worker.
let reservedWorkerSignals: [Int32] = [1, 2, 3, 10]

/// True for signals a graceful stop may use: known, catchable (not KILL or STOP), and not reserved.
func isGracefulSignal(_ n: Int32) -> Bool {
    n != 9 && n != 19 && !reservedWorkerSignals.contains(n) && SignalName.table.contains { $0.number == n }
}

extension ValueParser where Value == Int32 {
    /// A signal a worker can handle: `TERM`, `SIGTERM`, `15`; not 0, KILL, STOP or unknown names.
    static var gracefulSignal: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> Int32 in
            guard let n = signalNumber(text) else {
                throw ValueProblem("\(quoted(text)) is not a known signal (a name like TERM, SIGINT or a number like 15)")
            }
            guard !reservedWorkerSignals.contains(n) else {
                throw ValueProblem("\(quoted(text)) is reserved: HUP, INT, QUIT and USR1 carry swsgi's master-to-worker protocol; use TERM, USR2, ABRT...")
            }
            guard isGracefulSignal(n) else {
                throw ValueProblem("\(quoted(text)) cannot be caught, so it cannot ask for a graceful stop; use TERM, USR2, ABRT...")
            }
            return n
        }
    }
}

extension ValueParser where Value == UInt32 {
    /// An octal file mode: `660`, `0660`, at most 07777.
    static var octalMode: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> UInt32 in
            let digits = text.drop(while: { $0 == "0" })
            guard isDigits(text), text.utf8.allSatisfy({ $0 <= 0x37 }), digits.count <= 4,
                  let m = digits.isEmpty ? 0 : UInt32(digits, radix: 8) else {
                throw ValueProblem("\(quoted(text)) is not an octal mode like 660 or 0660")
            }
            return m
        }
    }
}

extension ValueParser where Value == Bool {
    /// `true/false/yes/no/on/off/1/0`, any case.
    static var bool: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> Bool in
            switch text.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw ValueProblem("\(quoted(text)) is not a boolean (true/false, yes/no, on/off, 1/0)")
            }
        }
    }
}

extension ValueParser where Value == String {
    /// Any text without NUL bytes; empty only if `allowEmpty`.
    static func string(allowEmpty: Bool = false) -> ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> String in
            if text.isEmpty && !allowEmpty { throw ValueProblem("needs a value") }
            try checkNoNUL(text)
            return text
        }
    }

    /// A Unix socket path: non-empty, at most 107 bytes.
    static var unixSocketPath: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> String in
            if let p = SocketPath.problem(text) { throw ValueProblem(p) }
            return text
        }
    }

    /// A user or group name or number, resolved at run time: no spaces, colons or NUL.
    /// Empty is uWSGI's `uid =`: nothing to drop to unless started as root, where it stops (see PrivilegeDrop).
    static var userOrGroup: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> String in
            guard text.utf8.count <= 256, !text.contains(where: { $0 == " " || $0 == ":" || $0 == "\0" || $0 == "\n" }) else {
                throw ValueProblem("\(quoted(text)) is not a user or group name or number")
            }
            return text
        }
    }

    /// `USER` or `USER:GROUP`, names or numeric ids, resolved at run time.
    static var owner: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> String in
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains(where: { $0 == " " || $0 == "\0" }) }) else {
                throw ValueProblem("\(quoted(text)) is not USER or USER:GROUP")
            }
            return text
        }
    }
}

extension ValueParser where Value == HTTPSocketAddress {
    /// `HOST:PORT`, `[IPV6]:PORT`, or `:PORT` for all addresses; port 1-65535.
    static var hostPort: ValueParser { hostPort(lowestPort: 1) }

    /// A listener's address: port 0 asks the kernel for a free port (uWSGI's reading of `HOST:$PORT`).
    static var listenerHostPort: ValueParser { hostPort(lowestPort: 0) }

    private static func hostPort(lowestPort: Int) -> ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> HTTPSocketAddress in
            let bad = ValueProblem("\(quoted(text)) is not HOST:PORT (like 127.0.0.1:8080, [::1]:8080 or :8080 for all addresses)")
            guard let colon = text.lastIndex(of: ":") else { throw bad }
            var host = Substring(text[..<colon])
            let portText = text[text.index(after: colon)...]
            if host.hasPrefix("[") {
                guard host.hasSuffix("]"), host.count > 2 else { throw bad }
                host = host.dropFirst().dropLast()
            } else if host.contains(":") || host.contains("[") || host.contains("]") {
                throw bad
            }
            guard !host.contains(where: { $0 == " " || $0 == "/" || $0 == "\0" }) else { throw bad }
            guard isDigits(portText) else { throw bad }
            guard portText.count <= 5, let port = Int(portText), (lowestPort...65535).contains(port) else {
                throw ValueProblem("\(quoted(text)): the port must be between \(lowestPort) and 65535")
            }
            return HTTPSocketAddress(host: String(host), port: UInt16(port))
        }
    }
}

extension ValueParser where Value == UwsgiSocketAddress {
    /// A Unix socket path (anything with a `/`, or without a `:`) or `HOST:PORT`.
    static var uwsgiSocket: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> UwsgiSocketAddress in
            if text.contains("/") || !text.contains(":") {
                if let p = SocketPath.problem(text) { throw ValueProblem(p) }
                return .unix(text)
            }
            return .tcp(try ValueParser<HTTPSocketAddress>.listenerHostPort.parse(text))
        }
    }
}

extension ValueParser where Value == BuiltinApp {
    /// `hello`, `echo`, `sleep` or `static:DIR`.
    static var builtinApp: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> BuiltinApp in
            switch text {
            case "hello": return .hello
            case "echo": return .echo
            case "sleep": return .sleep
            default:
                if text.hasPrefix("static:") {
                    let dir = String(text.dropFirst("static:".count))
                    if dir.isEmpty { throw ValueProblem("static:DIR needs a directory") }
                    try checkNoNUL(dir)
                    return .staticFiles(directory: dir)
                }
                throw ValueProblem("\(quoted(text)) is not a built-in app (hello, echo, sleep, static:DIR); use --app-library for your own")
            }
        }
    }
}

extension ValueParser where Value == UnderscoreHeaders {
    /// `drop`, `refuse` or `keep`.
    static var underscoreHeaders: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> UnderscoreHeaders in
            guard let v = UnderscoreHeaders(rawValue: text.lowercased()) else {
                throw ValueProblem("\(quoted(text)) is not drop, refuse or keep")
            }
            return v
        }
    }
}
