import ServicesCore

/// uWSGI's commands run by the master: attached daemons (`attach-daemon`, `attach-daemon2`,
/// `attach-control-daemon`) and cron jobs (`cron`, `unique-cron`). Pure parsing.

/// One attached daemon: a command the master starts, respawns and stops. The master's supervision
/// (ServicesCore) defines the value; the config only parses it.
public typealias DaemonOptions = AttachedDaemons.Spec

extension DaemonOptions {
    /// uWSGI's `attach-daemon2` keyval syntax (core/daemons.c). Keys swsgi cannot honour are refused.
    static func parse2(_ text: String) throws(ValueProblem) -> DaemonOptions {
        var d = DaemonOptions(command: "")
        // uwsgi_kvlist_parse: `,` separates pairs; a value may not hold one (cmd=a,b would split too).
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else { throw ValueProblem("\(quoted(text)): expected KEY=VALUE pairs, got \(quoted(String(part)))") }
            let value = String(kv[1])
            switch kv[0] {
            case "cmd", "command", "exec": d.command = value
            case "stopsignal", "stop_signal":
                guard let n = signalNumber(value) else { throw ValueProblem("\(quoted(text)): \(quoted(value)) is not a signal") }
                d.stopSignal = n
            case "reloadsignal", "reload_signal":
                guard let n = signalNumber(value) else { throw ValueProblem("\(quoted(text)): \(quoted(value)) is not a signal") }
                d.reloadSignal = n
            case "max_throttle": d.maxThrottleSeconds = try ValueParser<Int>.int(1...86400).parse(value)
            case "control": d.control = uwsgiTrue(value)
            case "chdir": d.chdir = value
            case "stdin":
                if uwsgiTrue(value) { throw ValueProblem("\(quoted(text)): stdin=1 is not supported: an attached daemon's stdin is /dev/null") }
            case "pidfile", "daemonize", "daemon", "freq":
                throw ValueProblem("\(quoted(text)): \(kv[0])= (a daemon managed by a pidfile) is not supported: run the command in the foreground (cmd= alone), and the master respawns it")
            case "uid", "gid":
                throw ValueProblem("\(quoted(text)): \(kv[0])= is not supported: the daemon runs as the master does (set uid/gid for the whole server, or use sudo -u in cmd)")
            case "touch", "ns_pid", "legion":
                throw ValueProblem("\(quoted(text)): \(kv[0])= is not supported by swsgi")
            default:
                throw ValueProblem("\(quoted(text)): unknown attach-daemon2 key \(quoted(String(kv[0])))")
            }
        }
        guard !d.command.trimmingSpaces().isEmpty else { throw ValueProblem("\(quoted(text)): cmd=COMMAND is missing") }
        return d
    }
}

private func uwsgiTrue(_ v: String) -> Bool { !["0", "false", "no", "off", ""].contains(v.lowercased()) }

/// One `cron = MIN HOUR DAY MONTH WEEKDAY COMMAND`: -1 is any, -N every N (uWSGI's syntax); `unique`
/// skips a run while the previous one still goes (`unique-cron`).
public struct CronCommandOptions: Equatable, Sendable {
    public var minute: Int, hour: Int, day: Int, month: Int, weekday: Int
    public var command: String
    public var unique: Bool

    static func parse(_ text: String, unique: Bool) throws(ValueProblem) -> CronCommandOptions {
        var rest = Substring(text).drop { $0 == " " || $0 == "\t" }
        var fields: [Int] = []
        while fields.count < 5 {
            let word = rest.prefix { $0 != " " && $0 != "\t" }
            guard !word.isEmpty, let n = Int(word) else {
                throw ValueProblem("\(quoted(text)): expected MINUTE HOUR DAY MONTH WEEKDAY COMMAND, numbers with -1 for any (uWSGI's cron syntax)")
            }
            fields.append(n)
            rest = rest.dropFirst(word.count).drop { $0 == " " || $0 == "\t" }
        }
        let command = String(rest).trimmingSpaces()
        guard !command.isEmpty else { throw ValueProblem("\(quoted(text)): the command is missing") }
        for (v, name, r) in [(fields[0], "minute", 0...59), (fields[1], "hour", 0...23), (fields[2], "day", 1...31),
                             (fields[3], "month", 1...12), (fields[4], "weekday", 0...7)] where v >= 0 && !r.contains(v) {
            throw ValueProblem("\(quoted(text)): \(name) \(v) is out of range \(r.lowerBound)...\(r.upperBound) (-1 = any, -N = every N)")
        }
        return CronCommandOptions(minute: fields[0], hour: fields[1], day: fields[2], month: fields[3], weekday: fields[4],
                                  command: String(command), unique: unique)
    }
}

let daemonOptionRows: [OptionSpec] = [
    OptionSpec(name: "attach-daemon", aliases: [], group: "Master commands", valueName: "COMMAND", defaultText: "none",
               help: "run COMMAND (sh -c) beside the server: respawned when it dies, stopped at exit (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   guard !text.trimmingSpaces().isEmpty else { throw ValueProblem("the command is empty") }
                   o.daemons.append(DaemonOptions(command: text))
               }, isBoolean: false),
    OptionSpec(name: "attach-control-daemon", aliases: [], group: "Master commands", valueName: "COMMAND", defaultText: "none",
               help: "as --attach-daemon, and the server stops when COMMAND dies (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   guard !text.trimmingSpaces().isEmpty else { throw ValueProblem("the command is empty") }
                   o.daemons.append(DaemonOptions(command: text, control: true))
               }, isBoolean: false),
    OptionSpec(name: "attach-daemon2", aliases: [], group: "Master commands", valueName: "cmd=C,...", defaultText: "none",
               help: "as --attach-daemon, keyvals: cmd, stopsignal, reloadsignal, max_throttle, control, chdir",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.daemons.append(try DaemonOptions.parse2(text))
               }, isBoolean: false),
    OptionSpec(name: "cron", aliases: [], group: "Master commands", valueName: "M H D MON WD CMD", defaultText: "none",
               help: "run CMD (sh -c) at matching local minutes; -1 = any, -N = every N (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.cronCommands.append(try CronCommandOptions.parse(text, unique: false))
               }, isBoolean: false),
    OptionSpec(name: "unique-cron", aliases: [], group: "Master commands", valueName: "M H D MON WD CMD", defaultText: "none",
               help: "as --cron, skipping a run while the previous one still goes (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.cronCommands.append(try CronCommandOptions.parse(text, unique: true))
               }, isBoolean: false),
]
