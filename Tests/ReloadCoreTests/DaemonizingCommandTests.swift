@testable import ReloadCore
import Testing

/// hupwatch refuses a command that would detach from it, with one line naming the flag.
@Suite struct DaemonizingCommandRefused {
    @Test(arguments: [
        ["swsgi", "--ini", "app.ini", "--daemonize", "/var/log/app.log"],
        ["/usr/bin/uwsgi", "--socket", "/run/a.sock", "--daemonize=/tmp/u.log"],
        ["uwsgi", "-d", "/tmp/u.log", "--ini", "a.ini"],
        ["uwsgi", "--daemonize2", "/tmp/u.log"],
        ["gunicorn", "-D", "app:app"],
        ["gunicorn", "--daemon", "app:app"],
    ])
    func refusedWithTheFlag(_ command: [String]) {
        let m = usageError(["--"] + command)
        #expect(m.contains("daemonizes") && m.contains("hupwatch must stay its parent"), "\(m)")
    }

    @Test func lookalikesPass() throws {
        // -d and -D mean other things to other programs; a value that mentions daemonize is not the flag.
        _ = try options(["--", "python3", "-d", "serve.py"])
        _ = try options(["--", "gunicorn", "-b", "unix:/tmp/g.sock", "--env", "X=--daemon", "app:app"])
    }
}
