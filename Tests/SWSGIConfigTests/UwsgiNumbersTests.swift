@testable import SWSGIConfig
import Testing

/// `[uwsgi]` numbers read as uWSGI reads them (strtol): the leading digits, 0 when there are none.
@Suite struct UwsgiNumbers {
    @Test func strtolReading() {
        for (text, n, rest) in [("1a", 1, "a"), ("2*2", 2, "*2"), ("true", 0, "true"), ("", 0, ""), ("-3x", -3, "x"),
                                ("+7", 7, ""), ("  12", 12, ""), ("-", 0, "-"), ("99999999999999999999999", Int.max, "")] {
            let r = cLeadingInteger(text)
            #expect(r.value == n && r.rest == rest, "\(text): \(r)")
        }
    }

    @Test func everyNonPlainValueIsReadAsUwsgiDoesWithOneWarningEach() throws {
        let result = try load(["--ini", "app.ini"], ini: """
            [uwsgi]
            processes = 2*2
            max-requests = 100 requests
            harakiri =
            memory-report = true
            listen = 64
            """)
        guard case .run(let o) = result else { Issue.record("\(result)"); return }
        #expect(o.processes == 2 && o.maxRequests == 100 && o.harakiriNanoseconds == 0 && !o.memoryReport && o.listenBacklog == 64)
        #expect(o.configWarnings == [
            "app.ini:2: processes = '2*2' is not a plain number: read as 2, as uWSGI reads it (strtol)",
            "app.ini:3: max-requests = '100 requests' is not a plain number: read as 100, as uWSGI reads it (strtol)",
            "app.ini:4: harakiri = '' is empty: read as 0, as uWSGI reads it (strtol)",
            "app.ini:5: memory-report = 'true' is not a plain number: read as 0, as uWSGI reads it (strtol)",
        ], "\(o.configWarnings)")
    }

    /// `threads = 0` (or `true`, read as 0) is uWSGI's unthreaded worker: one thread.
    @Test func threadsZeroIsOneThread() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nthreads = true\n").python.threads == 1)
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nthreads = 0\n").python.threads == 1)
    }

    /// A unit swsgi would understand (`64k`, `1m`) means another number to uWSGI: refused, not guessed.
    @Test func unitsAreRefusedWhereTheReadingsPart() throws {
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nbuffer-size = 64k\n")
                == "app.ini:2: buffer-size: '64k': uWSGI reads only the leading digits (64) and takes no unit; write the whole number")
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nharakiri = 250ms\n")?.contains("(250)") == true)
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nreload-on-rss = 1g\n")?.contains("of MiB") == true)
        // MiB for a MiB option agrees with uWSGI.
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nreload-on-rss = 300mb\n").reloadOnRSSMiB == 300)
    }

    /// A reading out of range names the text as written.
    @Test func zeroWorkersIsRefusedNamingTheText() {
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nprocesses = __NUM_PROCESSES__\n")
                == "app.ini:2: processes ('__NUM_PROCESSES__' read as 0): '0' is out of range: it must be between 1 and 4096")
    }

    /// swsgi's own flags stay strict: `--processes 1a` is a typo there, not a uWSGI config.
    @Test func theCommandLineStaysStrict() {
        #expect(cliFailure("processes", "1a") == "--processes: '1a' is not a whole number")
    }
}

/// Process keys swsgi accepts because it already gives what they ask, each with its reason in `--check`.
@Suite struct UwsgiProcessKeysAccepted {
    @Test func reasonsAreShownByCheck() throws {
        let result = try load(["--ini", "app.ini", "--check"], ini: """
            [uwsgi]
            binary-path = /usr/bin/uwsgi
            no-threads-wait = true
            plugin-dir = /usr/lib/uwsgi/plugins
            http-connect-timeout = 600
            honour-stdin = true
            """)
        guard case .check(_, let report) = result else { Issue.record("\(result)"); return }
        for line in ["; binary-path = /usr/bin/uwsgi: accepted, swsgi never re-executes itself",
                     "; no-threads-wait = true: accepted, a reloading or stopping swsgi worker waits for its request threads only up to worker-reload-mercy",
                     "; plugin-dir = /usr/lib/uwsgi/plugins: accepted, swsgi loads no plugins from a directory",
                     "; http-connect-timeout = 600: accepted, swsgi's workers speak HTTP themselves",
                     "; honour-stdin = true: accepted, swsgi leaves stdin as it was given"] {
            #expect(report.contains(line), "\(line)\n\(report)")
        }
    }

    @Test func exceptionFiltersAreRefused() {
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nreload-on-exception-type = ValueError\n")?
            .hasPrefix("app.ini:2: reload-on-exception-type: not supported: reload-on-exception recycles on any exception") == true)
    }

    /// A listener's port as uWSGI reads it (atoi after the last colon), with a warning; a plain address,
    /// a path or a port with no number stays as written for swsgi's own check.
    @Test func listenerPortsReadAsUwsgiReadsThem() throws {
        let result = try load(["--ini", "app.ini"], ini: "[uwsgi]\nsocket = localhost:8080;\nhttp = : 5000\n")
        guard case .run(let o) = result else { Issue.record("\(result)"); return }
        #expect(o.configWarnings == [
            "app.ini:2: socket = 'localhost:8080;': port read as 8080 ('localhost:8080'), as uWSGI reads it (atoi)",
            "app.ini:3: http = ': 5000': port read as 5000 (':5000'), as uWSGI reads it (atoi)",
        ], "\(o.configWarnings)")
        #expect(uwsgiPortReading(key: "socket", value: "127.0.0.1:3031") == nil)
        #expect(uwsgiPortReading(key: "socket", value: "/run/app.sock") == nil)
        #expect(uwsgiPortReading(key: "processes", value: "a:1x") == nil)
        #expect(uwsgiPortReading(key: "socket", value: "host:") == nil)
        #expect(uwsgiPortReading(key: "socket", value: "host:-1") == nil)
        #expect(uwsgiPortReading(key: "socket", value: "host:70000") == nil)
    }

    /// A port with no leading digits (`$PORT`, `<Port>`: placeholders uWSGI does not expand) is atoi's 0,
    /// a free port the kernel picks, with a warning naming the value and the port.
    @Test func aPortThatIsNotANumberIsPortZero() throws {
        let result = try load(["--ini", "app.ini"], ini: "[uwsgi]\nsocket = 127.0.0.1:<Port>\nhttp = 0.0.0.0:$PORT\nmodule = app\n")
        guard case .run(let o) = result else { Issue.record("\(result)"); return }
        #expect(o.uwsgiSocket == [.tcp(HTTPSocketAddress(host: "127.0.0.1", port: 0))])
        #expect(o.httpSocket == [HTTPSocketAddress(host: "0.0.0.0", port: 0)])
        #expect(o.configWarnings.first == "app.ini:2: socket = '127.0.0.1:<Port>': the port '<Port>' is not a number: read as 0 ('127.0.0.1:0'), as uWSGI reads it (atoi), so the kernel picks a free port (the 'listening on' line names it); uWSGI expands $(VAR), not $VAR", "\(o.configWarnings)")
        #expect(o.configWarnings.count == 2)
    }
}

extension UwsgiNumbers {
    /// uWSGI reads these keys with uwsgi_opt_set_int, which exits on a negative number ("invalid value for
    /// option: must be > 0"), and stores strtol's long in an int: a value out of int's range is no count.
    /// swsgi refuses both with one line, whatever the key comes to here (threads, a no-op, a placeholder).
    @Test(arguments: ["gevent = -1", "async = -5", "gevent = 99999999999999999999", "async = 2147483648",
                      "http-keepalive = -3", "http-timeout = -1", "log-slow = -20", "processes = -2x"])
    func negativeAndOutOfRangeCountsAreRefusedAsUwsgiRefusesThem(_ line: String) throws {
        let problem = failure(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\n\(line)\n")
        let key = String(line.prefix { $0 != " " })
        #expect(problem?.hasPrefix("app.ini:3: \(key)") == true, "\(line): \(problem ?? "accepted")")
        #expect(problem?.contains("uWSGI") == true, "\(line): \(problem ?? "accepted")")
    }

    /// 0 and the largest int are still counts (gevent = 0 is one request thread, as before).
    @Test func zeroAndIntMaxAreCounts() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\ngevent = 0\n").python.threads == 1)
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = app\nasync = 2147483647\n").python.threads == 256)
    }
}
