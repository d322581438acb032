/// `hupwatch reload|status|stop ...`: a command line that talks to a running hupwatch instead of
/// starting one.
public struct ControlRequest: Equatable, Sendable {
    public enum Verb: String, Sendable { case reload, status, stop }

    /// Which hupwatch: named by its pid file, its status file, or its pid.
    public enum Target: Equatable, Sendable {
        case pidFile(String)
        case statusFile(String)
        case pid(Int32)
    }

    public var verb: Verb
    public var target: Target
    /// reload, stop: wait for the outcome.
    public var wait = false
    /// With --wait: give up after this long (exit 124).
    public var timeout: UInt64 = 300 * nanosecondsPerSecond
    /// status: print the JSON document instead of a summary.
    public var json = false

    /// Exit codes of the control verbs.
    public enum Exit {
        public static let ok: Int32 = 0
        /// reload: rolled back; status: no ready generation serves.
        public static let failed: Int32 = 1
        /// No hupwatch answers at the target, or it did not take the request (stopping, too many callers).
        public static let unreachable: Int32 = 3
        public static let timedOut: Int32 = 124
    }

    static func parse(_ verb: Verb, _ args: ArraySlice<String>) throws(UsageError) -> ControlRequest {
        var target: Target?
        var wait = false
        var timeout: UInt64?
        var json = false
        var i = args.startIndex
        func value(_ flag: String, _ inline: String?) throws(UsageError) -> String {
            if let inline { return inline }
            i += 1
            guard i < args.endIndex, !args[i].isEmpty else { throw UsageError("\(flag) needs a value") }
            return args[i]
        }
        func setTarget(_ t: Target) throws(UsageError) {
            if target != nil { throw UsageError("\(verb.rawValue): name one hupwatch: --pid-file F, --status-file F or PID") }
            target = t
        }
        while i < args.endIndex {
            let arg = args[i]
            var flag = arg
            var inline: String? = nil
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                flag = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            switch flag {
            case "--wait" where verb != .status: wait = true
            case "--json" where verb == .status: json = true
            case "--timeout" where verb != .status:
                let v = try value(flag, inline)
                guard let d = parseDuration(v), d > 0 else { throw UsageError("--timeout: '\(v)' is not a duration above 0") }
                timeout = d
            case "--pid-file": try setTarget(.pidFile(try value(flag, inline)))
            case "--status-file": try setTarget(.statusFile(try value(flag, inline)))
            default:
                if let pid = Int32(arg), pid >= 1 {
                    try setTarget(.pid(pid))
                } else {
                    throw UsageError("\(verb.rawValue): unknown argument \(arg) (see hupwatch --help)")
                }
            }
            if inline != nil, ["--wait", "--json"].contains(flag) { throw UsageError("\(flag) takes no value") }
            i += 1
        }
        guard let target else { throw UsageError("\(verb.rawValue): name the hupwatch: --pid-file F, --status-file F or PID") }
        if timeout != nil && !wait { throw UsageError("--timeout goes with --wait") }
        var r = ControlRequest(verb: verb, target: target)
        r.wait = wait
        r.json = json
        if let timeout { r.timeout = timeout }
        return r
    }
}
