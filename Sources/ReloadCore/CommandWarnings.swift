/// What hupwatch can tell from the wrapped command line that will lose requests at every reload, said
/// once at start. Pure: the runner logs the lines.
public enum CommandWarnings {
    /// uWSGI stopping on the reload signal without finishing what its workers accepted.
    public static func lines(command: [String], reloadSignal: Int32) -> [String] {
        guard let program = command.first, program.split(separator: "/").last.map({ $0.hasPrefix("uwsgi") }) ?? false,
              reloadSignal == 15 else { return [] }
        let args = command.dropFirst()
        // The hook that makes SIGTERM a graceful stop; a config file may carry it where we cannot see.
        if args.contains(where: { $0.contains("gracefully_kill_them_all") }) { return [] }
        let hook = "--hook-master-start \"unix_signal:15 gracefully_kill_them_all\""
        if args.contains("--die-on-term") || args.contains("--die-on-term=true") || args.contains("--die-on-term=1") {
            return ["warning: uwsgi --die-on-term stops its workers at once on SIGTERM: requests they accepted are reset at every reload. Add \(hook) (uWSGI's graceful stop: accepted requests finish, and hupwatch hands the queue over first)"]
        }
        let configFile = args.contains { a in
            ["--ini", "--yaml", "--json", "--xml", "--config"].contains { a == $0 || a.hasPrefix($0 + "=") } || a.hasSuffix(".ini")
        }
        if configFile { return [] }
        return ["warning: uWSGI 2.0 takes SIGTERM (hupwatch's reload signal) as a brutal reload, not a stop: the old generation would restart in place until SIGKILLed. Add \(hook)"]
    }

    /// A TCP address the command binds itself (`--http-socket :8000`, uWSGI's `--http`/`--socket HOST:PORT`,
    /// gunicorn's `--bind HOST:PORT`): the next generation cannot bind it while the serving one holds it, so
    /// every reload would fail. hupwatch can own it instead (`--listen`), and hands it to each generation.
    /// Only meaningful when hupwatch owns or inherits no listener.
    public static func tcpBinds(command: [String]) -> [String] {
        var addresses: [String] = []
        var i = 1
        while i < command.count {
            let word = command[i]
            if word == "--" { break }
            var flag = word, value: String? = i + 1 < command.count ? command[i + 1] : nil
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") {
                flag = String(word[..<eq])
                value = String(word[word.index(after: eq)...])
            }
            let flags = ["--http-socket", "--http11-socket", "--uwsgi-socket", "--socket", "-s", "--http", "--bind", "-b"]
            if flags.contains(flag), let v = value, !v.hasPrefix("unix:"), !v.contains("/"),
               let colon = v.lastIndex(of: ":"), !v[v.index(after: colon)...].isEmpty,
               v[v.index(after: colon)...].allSatisfy({ $0.isASCII && $0.isNumber }) {
                addresses.append(v)
            }
            i += 1
        }
        return addresses.map { a in
            "warning: the command binds TCP \(a) itself: a new generation cannot bind it while the serving one holds it, so reloads would fail. Give hupwatch --listen \(a) (hupwatch owns the port and hands it to every generation; swsgi and uWSGI use an inherited socket with the same address)"
        }
    }
}
