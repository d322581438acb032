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
}
