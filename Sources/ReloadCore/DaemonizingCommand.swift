/// A command that would detach from hupwatch (uWSGI's and swsgi's `--daemonize`, gunicorn's `--daemon`):
/// its first process exits at once and the server lives on outside hupwatch's reach, so hupwatch could
/// neither see it become ready nor stop or replace it. Found in the command line only; swsgi refuses a
/// `daemonize` from its ini file itself when it runs under hupwatch.
enum DaemonizingCommand {
    /// The flag that daemonizes, as written, or nil.
    static func flag(in command: [String]) -> String? {
        var args = command.dropFirst()
        var program = command.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        // `python3 -m gunicorn ...`: the server is the module, its flags follow it.
        if program.hasPrefix("python"), let m = args.firstIndex(of: "-m"), m + 1 < args.endIndex {
            program = args[m + 1]
            args = args[(m + 2)...]
        }
        for arg in args {
            let name = arg.split(separator: "=", maxSplits: 1).first.map(String.init) ?? arg
            if ["--daemonize", "--daemonize2", "--daemon"].contains(name) { return arg }
            // Short forms only where they mean that, as their parsers read them: uWSGI's -d (getopt: its
            // value may be attached, `-d/var/log/u.log`), gunicorn's -D (argparse: clustered, `-Dw2`).
            guard arg.hasPrefix("-"), !arg.hasPrefix("--") else { continue }
            if program.hasPrefix("uwsgi"), arg.hasPrefix("-d") { return arg }
            if program.hasPrefix("gunicorn"), arg.hasPrefix("-D") { return arg }
        }
        return nil
    }
}
