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
        // Attack on issue 21: argparse's clustered short flags, getopt's attached value, and the server
        // started as a module: each daemonized while hupwatch reported the generation's exit 0.
        ["gunicorn", "-Dw1", "-b", "unix:app.sock", "app:app"],
        ["python3", "-m", "gunicorn", "-D", "app:app"],
        ["/venv/bin/python3.11", "-m", "gunicorn", "--daemon", "app:app"],
        ["uwsgi", "-d/tmp/u.log", "--socket", "a.sock"],
        ["python3", "-m", "uwsgi", "-d", "/tmp/u.log"],
    ])
    func refusedWithTheFlag(_ command: [String]) {
        let m = usageError(["--"] + command)
        #expect(m.contains("daemonizes") && m.contains("hupwatch must stay its parent"), "\(m)")
    }

    @Test func lookalikesPass() throws {
        // -d and -D mean other things to other programs; a value that mentions daemonize is not the flag.
        _ = try options(["--", "python3", "-d", "serve.py"])
        _ = try options(["--", "python3", "-m", "http.server", "-d", "/srv"])
        _ = try options(["--", "gunicorn", "-w", "2", "-b", "unix:/tmp/g.sock", "app:app"])
        _ = try options(["--", "gunicorn", "-b", "unix:/tmp/g.sock", "--env", "X=--daemon", "app:app"])
    }
}
