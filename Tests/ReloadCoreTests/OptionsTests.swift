import Testing
import ReloadCore

/// The signal names the parser is handed in production come from Posix; these few are enough here.
func signalNumber(_ text: String) -> Int32? {
    if let n = Int32(text) { return (1...64).contains(n) ? n : nil }
    var name = text.uppercased()
    if name.hasPrefix("SIG") { name.removeFirst(3) }
    return ["HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15, "STOP": 19, "WINCH": 28][name]
}

func parse(_ args: [String]) throws(UsageError) -> ParsedCommandLine {
    try HupwatchOptions.parse(args, signalNumber: signalNumber)
}

/// The options of a command line that must parse into `.run`.
func options(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> HupwatchOptions {
    guard case .run(let o) = try parse(args) else {
        Issue.record("\(args) did not parse into a run", sourceLocation: sourceLocation)
        throw UsageError("not a run")
    }
    return o
}

/// The message of the usage error `args` must produce.
func usageError(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        let r = try parse(args)
        Issue.record("\(args) parsed into \(r) instead of failing", sourceLocation: sourceLocation)
        return ""
    } catch {
        #expect(!error.message.contains("\n"), "usage errors are one line", sourceLocation: sourceLocation)
        return error.message
    }
}

let s = nanosecondsPerSecond
let path107 = "/tmp/" + String(repeating: "a", count: 102)
let path108 = "/tmp/" + String(repeating: "a", count: 103)

@Suite struct OptionParserTests {
    @Test func defaults() throws {
        let o = try options(["--", "srv", "arg"])
        var expected = HupwatchOptions()
        expected.command = ["srv", "arg"]
        #expect(o == expected)
        #expect(o.ready == .auto)
        #expect(o.readyTimeout == 30 * s)
        #expect(o.gracefulTimeout == 30 * s)
        #expect(o.reloadSignal == 15)
        #expect(o.socketMode == 0o660)
        #expect(o.guardEnabled && !o.killAtExit && !o.quiet && !o.verbose)
        #expect(o.onExit == .exit)
        #expect(o.listenPath == nil && o.socketPath == nil && o.chdir == nil && o.pidFile == nil && o.statusFile == nil)
    }

    @Test func commandWithoutDoubleDashStartsAtFirstNonOption() throws {
        let o = try options(["-v", "srv", "--socket", "/x/y", "-q"])
        #expect(o.command == ["srv", "--socket", "/x/y", "-q"])
        #expect(o.verbose && !o.quiet)
        // Everything after -- is the command, even what looks like hupwatch's flags.
        #expect(try options(["--", "--help"]).command == ["--help"])
        #expect(try options(["--", "-"]).command == ["-"])
        #expect(try options(["-"]).command == ["-"])
    }

    @Test func everyFlagWithSeparateValue() throws {
        let o = try options([
            "--ready", "notify", "--ready-timeout", "5", "--graceful-timeout", "250ms", "--reload-signal", "QUIT",
            "--listen", "/run/app.sock", "--socket-mode", "0600", "--no-guard", "--on-exit", "restart",
            "--kill-at-exit", "--chdir", "/srv/current", "--pid-file", "/run/hw.pid", "--status-file", "/run/hw.json",
            "--quiet", "--verbose", "--", "app", "x",
        ])
        #expect(o.ready == .notify)
        #expect(o.readyTimeout == 5 * s)
        #expect(o.gracefulTimeout == 250_000_000)
        #expect(o.reloadSignal == 3)
        #expect(o.listenPath == "/run/app.sock")
        #expect(o.socketMode == 0o600)
        #expect(!o.guardEnabled)
        #expect(o.onExit == .restart)
        #expect(o.killAtExit)
        #expect(o.chdir == "/srv/current")
        #expect(o.pidFile == "/run/hw.pid")
        #expect(o.statusFile == "/run/hw.json")
        #expect(o.quiet && o.verbose)
        #expect(o.command == ["app", "x"])
    }

    @Test func everyFlagWithEqualsValue() throws {
        let o = try options([
            "--ready=http:/healthz", "--ready-timeout=1.5", "--graceful-timeout=2s", "--reload-signal=SIGUSR2",
            "--socket=/run/app.sock", "--socket-mode=0666", "--on-exit=exit", "--chdir=/srv", "--pid-file=/p",
            "--status-file=/s", "--", "app",
        ])
        #expect(o.ready == .http(path: "/healthz"))
        #expect(o.readyTimeout == 1_500_000_000)
        #expect(o.gracefulTimeout == 2 * s)
        #expect(o.reloadSignal == 12)
        #expect(o.socketPath == "/run/app.sock")
        #expect(o.socketPathSource == .flag)
        #expect(o.socketMode == 0o666)
        #expect(o.onExit == .exit)
        #expect(o.chdir == "/srv" && o.pidFile == "/p" && o.statusFile == "/s")
        #expect(try options(["--listen=/run/l.sock", "app"]).listenPath == "/run/l.sock")
        // A value may itself contain '='.
        #expect(try options(["--chdir=/a=b", "app"]).chdir == "/a=b")
    }

    @Test func readinessModes() throws {
        #expect(try options(["--ready", "auto", "x"]).ready == .auto)
        #expect(try options(["--ready", "notify", "x"]).ready == .notify)
        #expect(try options(["--ready", "socket:/run/a.sock", "x"]).ready == .socket(path: "/run/a.sock"))
        #expect(try options(["--ready", "http:/", "--socket", "/tmp/a.sock", "x"]).ready == .http(path: "/"))
        #expect(try options(["--ready", "delay:0.3", "x"]).ready == .delay(nanoseconds: 300_000_000))
        #expect(try options(["--ready", "delay:250ms", "x"]).ready == .delay(nanoseconds: 250_000_000))
        // The last one given wins.
        #expect(try options(["--ready", "notify", "--ready", "auto", "x"]).ready == .auto)
    }

    @Test func originalHupwatchFlags() throws {
        let o = try options(["-w", "2", "-k", "-v", "--", "app"])
        #expect(o.ready == .delay(nanoseconds: 2 * s))
        #expect(o.killAtExit)
        #expect(o.verbose)
        #expect(try options(["--warmup-time", "0.5", "app"]).ready == .delay(nanoseconds: 500_000_000))
        #expect(try options(["--warmup-time=1", "app"]).ready == .delay(nanoseconds: s))
        #expect(try options(["-q", "app"]).quiet)
        #expect(try parse(["-h"]) == .help)
        #expect(try parse(["--help", "app"]) == .help)
        #expect(try parse(["--version"]) == .version)
        // --help wins over an error later on the line only if it comes first.
        #expect(try parse(["--help", "--bogus"]) == .help)
    }

    @Test func reloadSignalSpellings() throws {
        #expect(try options(["--reload-signal", "TERM", "x"]).reloadSignal == 15)
        #expect(try options(["--reload-signal", "sigquit", "x"]).reloadSignal == 3)
        #expect(try options(["--reload-signal", "10", "x"]).reloadSignal == 10)
        #expect(usageError(["--reload-signal", "BOGUS", "x"]).contains("'BOGUS' is not a signal"))
        // SIGKILL and SIGSTOP cannot be a graceful reload.
        #expect(usageError(["--reload-signal", "KILL", "x"]).contains("--reload-signal"))
        #expect(usageError(["--reload-signal", "9", "x"]).contains("--reload-signal"))
        #expect(usageError(["--reload-signal", "STOP", "x"]).contains("--reload-signal"))
        #expect(usageError(["--reload-signal", "0", "x"]).contains("--reload-signal"))
    }

    @Test func unknownFlag() {
        #expect(usageError(["--bogus", "--", "x"]) == "unknown option --bogus (see hupwatch --help)")
        #expect(usageError(["--bogus=1", "x"]).contains("unknown option --bogus=1"))
        #expect(usageError(["-x", "app"]).contains("unknown option -x"))
        // Single-dash flags take no inline value.
        #expect(usageError(["-w=2", "app"]).contains("unknown option -w=2"))
    }

    @Test func missingCommand() {
        #expect(usageError([]).hasPrefix("no command given"))
        #expect(usageError(["--"]).hasPrefix("no command given"))
        #expect(usageError(["-v", "--ready", "notify"]).hasPrefix("no command given"))
        #expect(usageError(["--", ""]) == "the command is an empty string")
    }

    @Test func missingValue() {
        #expect(usageError(["--ready"]) == "--ready needs a value")
        #expect(usageError(["--chdir"]) == "--chdir needs a value")
        #expect(usageError(["--chdir=", "x"]) == "--chdir needs a value")
        #expect(usageError(["--pid-file", "", "x"]) == "--pid-file needs a value")
        #expect(usageError(["--status-file="]) == "--status-file needs a value")
        #expect(usageError(["--listen", "", "x"]) == "--listen: needs an address: HOST:PORT, [IPv6]:PORT, :PORT or a socket path")
    }

    @Test func switchesRejectValues() {
        for flag in ["--quiet", "--verbose", "--kill-at-exit", "--no-guard"] {
            #expect(usageError(["\(flag)=yes", "x"]) == "\(flag) takes no value")
        }
    }

    @Test func badDurations() {
        #expect(usageError(["--graceful-timeout", "abc", "x"]).hasPrefix("--graceful-timeout: 'abc' is not a duration"))
        #expect(usageError(["--ready-timeout", "-1", "x"]).hasPrefix("--ready-timeout: '-1' is not a duration"))
        #expect(usageError(["--ready-timeout", "0", "x"]) == "--ready-timeout must be above 0")
        #expect(usageError(["-w", "soon", "x"]).hasPrefix("-w: 'soon' is not a duration"))
        #expect(usageError(["--ready", "delay:x", "x"]).hasPrefix("--ready delay:SECONDS: 'x' is not a duration"))
        #expect(usageError(["--graceful-timeout=", "x"]).contains("is not a duration"))
        // Zero is a legal graceful timeout (SIGKILL at once) and a legal delay.
        #expect((try? options(["--graceful-timeout", "0", "x"]))?.gracefulTimeout == 0)
        #expect((try? options(["--ready", "delay:0", "x"]))?.ready == .delay(nanoseconds: 0))
    }

    @Test func badValues() {
        #expect(usageError(["--ready", "sometimes", "x"]).hasPrefix("--ready: 'sometimes' is not auto, notify"))
        #expect(usageError(["--ready", "http:healthz", "x"]).hasPrefix("--ready http:PATH needs a URL path starting with /"))
        #expect(usageError(["--ready", "http:/a b", "x"]).hasPrefix("--ready http:PATH"))
        #expect(usageError(["--ready", "socket:", "x"]) == "--ready socket: needs a socket path")
        #expect(usageError(["--socket-mode", "999", "x"]).hasPrefix("--socket-mode: '999' is not an octal mode"))
        #expect(usageError(["--socket-mode", "17777", "x"]).hasPrefix("--socket-mode"))
        #expect(usageError(["--on-exit", "sometimes", "x"]) == "--on-exit: 'sometimes' is not 'exit' or 'restart'")
    }

    @Test func socketPathLength() throws {
        #expect(path107.utf8.count == 107)
        #expect(try options(["--listen", path107, "x"]).listenPath == path107)
        #expect(try options(["--socket", path107, "x"]).socketPath == path107)
        #expect(try options(["--ready", "socket:" + path107, "x"]).ready == .socket(path: path107))
        #expect(usageError(["--listen", path108, "x"]).hasPrefix("--listen: the socket path is 108 bytes, longer than the 107"))
        #expect(usageError(["--socket=" + path108, "x"]).hasPrefix("--socket: the socket path is 108 bytes"))
        #expect(usageError(["--ready", "socket:" + path108, "x"]).hasPrefix("--ready socket:: the socket path is 108 bytes"))
        // Bytes, not characters.
        let wide = "/tmp/" + String(repeating: "é", count: 52)
        #expect(wide.count == 57 && wide.utf8.count == 109)
        #expect(usageError(["--listen", wide, "x"]).contains("109 bytes"))
    }

    @Test func probesCannotBeUsedWithListen() {
        #expect(usageError(["--listen", "/run/a.sock", "--ready", "socket:/run/a.sock", "x"]).contains("cannot be used with --listen"))
        #expect(usageError(["--ready=http:/", "--listen=/run/a.sock", "x"]).contains("cannot be used with --listen"))
        for mode in ["auto", "notify", "delay:1"] {
            #expect((try? options(["--listen", "/run/a.sock", "--ready", mode, "x"])) != nil, "--ready \(mode) works with --listen")
        }
    }

    @Test func probePath() throws {
        #expect(try options(["--ready", "socket:/a", "--socket", "/b", "x"]).probePath == "/a")
        #expect(try options(["--socket", "/b", "x"]).probePath == "/b")
        #expect(try options(["x", "--socket", "/c/d.sock"]).probePath == "/c/d.sock")
        #expect(try options(["x"]).probePath == nil)
        // All generations share hupwatch's listener: probing it cannot tell the new generation answered.
        #expect(try options(["--listen", "/l", "x"]).probePath == nil)
        #expect(try options(["--listen", "/l", "--ready", "notify", "x"]).probePath == nil)
    }
}

@Suite struct SocketPathDetectionTests {
    func detected(_ command: [String]) throws -> String? {
        let o = try options(["--"] + command)
        #expect((o.socketPathSource == .commandLine) == (o.socketPath != nil))
        return o.socketPath
    }

    @Test func swsgi() throws {
        #expect(try detected(["swsgi", "--socket", "/run/app.sock", "app:main"]) == "/run/app.sock")
        #expect(try detected(["swsgi", "--workers", "4", "--socket=/run/app.sock"]) == "/run/app.sock")
        #expect(try detected(["swsgi", "-s", "/run/app.sock"]) == "/run/app.sock")
    }

    @Test func gunicorn() throws {
        #expect(try detected(["gunicorn", "--bind", "unix:/run/g.sock", "app:app"]) == "/run/g.sock")
        #expect(try detected(["gunicorn", "-b", "unix:/run/g.sock", "app:app"]) == "/run/g.sock")
        #expect(try detected(["gunicorn", "--bind=unix:/run/g.sock", "app:app"]) == "/run/g.sock")
        #expect(try detected(["gunicorn", "--bind", "127.0.0.1:8000", "app:app"]) == nil)
    }

    @Test func uwsgi() throws {
        #expect(try detected(["uwsgi", "--socket", "/run/u.sock", "--module", "app"]) == "/run/u.sock")
        #expect(try detected(["uwsgi", "--http-socket", "/run/u.sock"]) == "/run/u.sock")
        #expect(try detected(["uwsgi", "--uwsgi-socket=/run/u.sock"]) == "/run/u.sock")
        #expect(try detected(["uwsgi", "--http11-socket", "/run/u.sock"]) == "/run/u.sock")
        #expect(try detected(["uwsgi", "--socket", "127.0.0.1:3031"]) == nil)
        #expect(try detected(["uwsgi", "--socket", ":3031"]) == nil)
    }

    /// Issue 21.1: a name without a slash is a path relative to the command's folder; gunicorn's attached
    /// short form and uWSGI's attached `-s` are the same flags.
    @Test func bareNamesAndAttachedShortForms() throws {
        #expect(try detected(["uwsgi", "--http-socket", "app.sock"]) == "app.sock")
        #expect(try detected(["uwsgi", "--socket", "app.sock"]) == "app.sock")
        #expect(try detected(["swsgi", "--socket=app.sock"]) == "app.sock")
        #expect(try detected(["gunicorn", "-bunix:app.sock", "app:app"]) == "app.sock")
        #expect(try detected(["gunicorn", "-bunix:/run/g.sock", "app:app"]) == "/run/g.sock")
        #expect(try detected(["gunicorn", "--bind", "unix:app.sock", "app:app"]) == "app.sock")
        #expect(try detected(["uwsgi", "-sapp.sock"]) == "app.sock")
        let o = try options(["--", "gunicorn", "-bunix:app.sock", "app:app"])
        #expect(o.socketArgument?.rewriting(o.command, to: "/x/.app.sock.g1") == ["gunicorn", "-bunix:/x/.app.sock.g1", "app:app"])
        #expect(SocketArgument.commandChdir(in: ["gunicorn", "--chdir", "/srv/app", "-bunix:app.sock"]) == "/srv/app")
        #expect(SocketArgument.commandChdir(in: ["uwsgi", "--chdir=rel", "--socket", "a.sock"]) == "rel")
        #expect(SocketArgument.commandChdir(in: ["swsgi", "--socket", "a.sock"]) == nil)
        // Still not paths: TCP addresses, ports, abstract names.
        #expect(try detected(["uwsgi", "--socket", "127.0.0.1:3031"]) == nil)
        #expect(try detected(["gunicorn", "-b127.0.0.1:8000", "app:app"]) == nil)
        #expect(try detected(["uwsgi", "--socket", "@abstract"]) == nil)
    }

    /// gunicorn takes `unix:` with an optional `//` (its parse_address: `re.split(r'unix:(//)?', netloc)[-1]`):
    /// `unix://app.sock` is the relative `app.sock`, `unix:///run/g.sock` the absolute `/run/g.sock`. Read as
    /// `//app.sock`, the public path became `/app.sock` (its lock in `/`) while the generation bound a
    /// private path in its own folder: nothing was ever published.
    @Test func gunicornUnixSlashSlash() throws {
        #expect(try detected(["gunicorn", "-b", "unix://app.sock", "app:app"]) == "app.sock")
        #expect(try detected(["gunicorn", "--bind=unix://app.sock", "app:app"]) == "app.sock")
        #expect(try detected(["gunicorn", "-bunix:///run/g.sock", "app:app"]) == "/run/g.sock")
        #expect(try detected(["gunicorn", "--bind", "unix:///run/g.sock", "app:app"]) == "/run/g.sock")
        let o = try options(["--", "gunicorn", "-b", "unix://app.sock", "app:app"])
        // Rewritten, gunicorn must read back exactly the private path hupwatch chose.
        #expect(o.socketArgument?.rewriting(o.command, to: "/x/.app.sock.g1") == ["gunicorn", "-b", "unix:///x/.app.sock.g1", "app:app"])
        #expect(try detected(["gunicorn", "-b", "unix://@abstract", "app:app"]) == nil)
        #expect(try detected(["gunicorn", "-b", "unix://", "app:app"]) == nil)
    }

    @Test func notDetected() throws {
        #expect(try detected(["server"]) == nil)
        #expect(try detected(["server", "--socket"]) == nil)
        // argv[0] is the program, never a flag.
        #expect(HupwatchOptions.detectSocketPath(in: ["--socket", "/a/b"]) == nil)
        #expect(try detected(["server", "--port", "/a/b"]) == nil)
    }

    @Test func explicitSocketOrListenWins() throws {
        let o = try options(["--socket", "/mine.sock", "--", "gunicorn", "--bind", "unix:/theirs.sock"])
        #expect(o.socketPath == "/mine.sock")
        #expect(o.socketPathSource == .flag)
        let l = try options(["--listen", "/l.sock", "--", "swsgi", "--socket", "/s.sock"])
        #expect(l.socketPath == nil)
        #expect(l.socketPathSource == .flag)
    }

    @Test func detectedPathLengthIsNotChecked() throws {
        // Detection only finds the path; the runner reports a missing folder, the server its own bind error.
        #expect(try detected(["swsgi", "--socket", path108]) == path108)
    }
}

@Suite struct DurationTests {
    @Test func parses() {
        #expect(parseDuration("30") == 30 * s)
        #expect(parseDuration("0") == 0)
        #expect(parseDuration("1.5") == 1_500_000_000)
        #expect(parseDuration(".5") == 500_000_000)
        #expect(parseDuration("250ms") == 250_000_000)
        #expect(parseDuration("2s") == 2 * s)
        #expect(parseDuration("1m") == 60 * s)
        #expect(parseDuration("1.5m") == 90 * s)
        #expect(parseDuration("2h") == 7200 * s)
        #expect(parseDuration("0.001") == 1_000_000)
        #expect(parseDuration("1ms") == 1_000_000)
        #expect(parseDuration("999999999") == 999_999_999 * s)
    }

    @Test func rejects() {
        for bad in ["", "-1", "abc", "1.5.5", "nan", "NaN", "inf", "ms", "s", "1e3", " 1", "1 ", "+1", "1x", "1sec",
                    "10d", "1000000001", "1,5", "0x10", "١"] {
            #expect(parseDuration(bad) == nil, "'\(bad)' is not a duration")
        }
    }

    @Test func formats() {
        #expect(formatDuration(0) == "0ms")
        #expect(formatDuration(250_000_000) == "250ms")
        #expect(formatDuration(999_000_000) == "999ms")
        #expect(formatDuration(s) == "1s")
        #expect(formatDuration(1_500_000_000) == "1.5s")
        #expect(formatDuration(2 * s) == "2s")
        #expect(formatDuration(30 * s) == "30s")
        #expect(formatDuration(1_960_000_000) == "2s")
    }

    @Test func exitCodes() {
        #expect(ExitCode.usage == 2)
        #expect(ExitCode.environment == 3)
        #expect(ExitCode.notExecutable == 126)
        #expect(ExitCode.notFound == 127)
    }
}

/// Issue 21.6: uWSGI wrapped with a SIGTERM that resets what its workers accepted is warned about.
@Suite struct CommandWarningTests {
    @Test func uwsgiDieOnTermWithoutTheGracefulHook() {
        let w = CommandWarnings.lines(command: ["/usr/bin/uwsgi", "--http-socket", "a.sock", "--die-on-term"], reloadSignal: 15)
        #expect(w.count == 1 && w[0].contains("--die-on-term") && w[0].contains("gracefully_kill_them_all"))
        #expect(CommandWarnings.lines(command: ["uwsgi", "--die-on-term", "--hook-master-start", "unix_signal:15 gracefully_kill_them_all"], reloadSignal: 15).isEmpty)
        #expect(CommandWarnings.lines(command: ["uwsgi", "--http-socket", "a.sock"], reloadSignal: 15).count == 1, "SIGTERM is uWSGI 2.0's brutal reload")
        #expect(CommandWarnings.lines(command: ["uwsgi", "--ini", "app.ini"], reloadSignal: 15).isEmpty, "the ini may hook it")
        #expect(CommandWarnings.lines(command: ["uwsgi", "--die-on-term"], reloadSignal: 1).isEmpty, "another reload signal")
        #expect(CommandWarnings.lines(command: ["gunicorn", "--die-on-term"], reloadSignal: 15).isEmpty)
    }
}

/// Issue 20: a server binding a TCP port itself cannot be reloaded by rebinding (the port is taken by the
/// serving generation); hupwatch says so and names the --listen that fixes it.
@Suite struct TCPBindWarningTests {
    @Test func tcpAddressesInTheCommandAreNamed() {
        let w = CommandWarnings.tcpBinds(command: ["swsgi", "--http-socket", "127.0.0.1:8000", "--socket", "app.sock", "--uwsgi-socket=:3031"])
        #expect(w.count == 2 && w[0].contains("--listen 127.0.0.1:8000") && w[1].contains("--listen :3031"))
        #expect(CommandWarnings.tcpBinds(command: ["gunicorn", "-b", "0.0.0.0:80", "--bind", "unix:/run/g.sock", "app:app"]).count == 1)
        #expect(CommandWarnings.tcpBinds(command: ["swsgi", "--socket", "/run/a.sock", "--processes", "2"]).isEmpty)
        #expect(CommandWarnings.tcpBinds(command: ["swsgi", "--", "--http-socket", ":80"]).isEmpty)
    }
}
