/// A command that would detach from hupwatch (uWSGI's and swsgi's `--daemonize`, gunicorn's `--daemon`):
/// its first process exits at once and the server lives on outside hupwatch's reach, so hupwatch could
/// neither see it become ready nor stop or replace it. Found in the command line only; swsgi refuses a
/// `daemonize` from its ini file itself when it runs under hupwatch.
enum DaemonizingCommand {
    /// The flag that daemonizes, as written, or nil.
    static func flag(in command: [String]) -> String? {
        let program = command.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        for arg in command.dropFirst() {
            let name = arg.split(separator: "=", maxSplits: 1).first.map(String.init) ?? arg
            if ["--daemonize", "--daemonize2", "--daemon"].contains(name) { return arg }
            // Short forms only where they mean that: uWSGI's -d, gunicorn's -D.
            if program.hasPrefix("uwsgi"), arg == "-d" { return arg }
            if program.hasPrefix("gunicorn"), arg == "-D" { return arg }
        }
        return nil
    }
}
