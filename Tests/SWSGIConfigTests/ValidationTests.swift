@testable import SWSGIConfig
import Testing

@Suite struct Validation {
    @Test func defaultsAreValid() {
        #expect(validationFailure { _ in } == nil)
    }

    @Test func listener() throws {
        // Several listeners, each with its protocol, in the order given within each kind.
        let several = try options(["--socket", "/run/a.sock", "--http-socket", ":80", "--uwsgi-socket", "/run/u.sock", "--socket", "/run/b.sock"])
        #expect(several.listeners.map(\.description) == ["http:/run/a.sock", "http:/run/b.sock", "http::80", "uwsgi:/run/u.sock"])
        #expect(failure(["--socket", "/run/a.sock", "--uwsgi-socket", "/run/a.sock"])
            == "--socket /run/a.sock and --uwsgi-socket /run/a.sock: the same address twice; each listener needs its own")
        #expect(failure(["--http-socket", ":80", "--http-socket", ":80"]) != nil)
        // One file written two ways is still one address (bind would fail half-way with EEXIST otherwise).
        #expect(failure(["--socket", "./a.sock", "--socket", "a.sock"])
            == "--socket ./a.sock and --socket a.sock: the same address twice; each listener needs its own")
        #expect(failure(["--socket", "/run//a.sock", "--uwsgi-socket", "/run/./a.sock"]) != nil)
        #expect(failure(["--http-socket", "localhost:80", "--http-socket", "127.0.0.1:80"]) != nil)
        #expect(failure(["--http-socket", ":80", "--http-socket", "0.0.0.0:80"]) != nil)
        #expect(try options(["--socket", "a.sock", "--socket", "b/a.sock"]).listeners.count == 2)
        #expect(try options(["--socket", "/run/a.sock"]).hasExplicitListener)
        #expect(try options(["--http-socket", ":80"]).hasExplicitListener)
        #expect(try !options([]).hasExplicitListener)  // LISTEN_FDS may supply one
        #expect(validationFailure { $0.socket = ["/" + String(repeating: "x", count: 107)] }?.hasPrefix("--socket: the socket path is 108 bytes") == true)
        #expect(validationFailure { $0.socket = [""] } == "--socket: the socket path is empty")
        #expect(validationFailure { $0.statsSocket = String(repeating: "x", count: 200) } != nil)
        // Port 0: a free port each (uWSGI's reading of `HOST:$PORT`), so two of them are no clash.
        #expect(validationFailure { $0.httpSocket = [HTTPSocketAddress(host: "", port: 0), HTTPSocketAddress(host: "", port: 0)] } == nil)
    }

    @Test func processes() {
        #expect(validationFailure { $0.processes = 0 } == "--processes must be at least 1 (got 0)")
        #expect(failure(["--processes", "0"]) != nil)
    }

    @Test func cheaper() throws {
        #expect(try options(["--processes", "4", "--cheaper", "3"]).cheaper == 3)
        #expect(failure(["--processes", "4", "--cheaper", "4"]) == "--cheaper (4) must be below --processes (4)")
        #expect(failure(["--processes", "1", "--cheaper", "0"]) == nil)  // 0 = off
    }

    @Test func cheaperInitial() throws {
        let o = try options(["--processes", "8", "--cheaper", "2"])
        #expect(o.cheaperInitial == nil && o.effectiveCheaperInitial == 2)
        #expect(try options(["--processes", "8", "--cheaper", "2", "--cheaper-initial", "2"]).cheaperInitial == 2)
        #expect(try options(["--processes", "8", "--cheaper", "2", "--cheaper-initial", "8"]).effectiveCheaperInitial == 8)
        #expect(failure(["--processes", "8", "--cheaper", "2", "--cheaper-initial", "1"])
            == "--cheaper-initial (1) must be between --cheaper (2) and --processes (8)")
        #expect(failure(["--processes", "8", "--cheaper", "2", "--cheaper-initial", "9"]) != nil)
        #expect(failure(["--cheaper-initial", "1"]) == "--cheaper-initial needs --cheaper")
    }

    @Test func busyness() {
        #expect(failure(["--cheaper-busyness-min", "50"]) == "--cheaper-busyness-min (50) must be below --cheaper-busyness-max (50)")
        #expect(failure(["--cheaper-busyness-min", "0", "--cheaper-busyness-max", "100"]) == nil)
        #expect(failure(["--cheaper-busyness-max", "20"]) != nil)
        #expect(failure(["--cheaper-busyness-min", "-1"]) != nil)
        #expect(validationFailure { $0.cheaperBusynessMax = 101 } == "--cheaper-busyness-max must be between 0 and 100")
    }

    @Test func rssLimits() {
        #expect(failure(["--cheaper-rss-limit-soft", "1g", "--cheaper-rss-limit-hard", "2g"]) == nil)
        #expect(failure(["--cheaper-rss-limit-soft", "2g", "--cheaper-rss-limit-hard", "2g"])
            == "--cheaper-rss-limit-soft (2147483648) must be below --cheaper-rss-limit-hard (2147483648)")
        #expect(failure(["--cheaper-rss-limit-soft", "2g"]) == nil)  // hard off
        #expect(failure(["--cheaper-rss-limit-hard", "1m"]) == nil)  // soft off
    }

    @Test func harakiriGraceful() {
        #expect(failure(["--harakiri-graceful-timeout", "5"])
            == "--harakiri-graceful-timeout needs --harakiri: it is the grace period after a harakiri")
        #expect(failure(["--harakiri-graceful-timeout", "5", "--harakiri", "30"]) == nil)
        #expect(failure(["--harakiri-graceful-timeout", "0"]) == nil)
        #expect(validationFailure { $0.harakiriGracefulSignal = 9 } != nil)
        #expect(validationFailure { $0.harakiriGracefulSignal = 0 } != nil)
    }

    @Test func maxRequestsDelta() {
        #expect(failure(["--max-requests", "1000", "--max-requests-delta", "999"]) == nil)
        #expect(failure(["--max-requests", "1000", "--max-requests-delta", "1000"])
            == "--max-requests-delta (1000) must be below --max-requests (1000)")
        #expect(failure(["--max-requests-delta", "5"]) == "--max-requests-delta needs --max-requests")
    }

    @Test func maxWorkerLifetimeDelta() {
        #expect(failure(["--max-worker-lifetime", "60", "--max-worker-lifetime-delta", "30"]) == nil)
        #expect(failure(["--max-worker-lifetime", "60", "--max-worker-lifetime-delta", "60"]) != nil)
        #expect(failure(["--max-worker-lifetime-delta", "5"]) == "--max-worker-lifetime-delta needs --max-worker-lifetime")
    }

    @Test func rssReloads() throws {
        #expect(try options(["--reload-on-rss", "512", "--evil-reload-on-rss", "512"]).evilReloadOnRSSMiB == 512)
        #expect(failure(["--reload-on-rss", "512", "--evil-reload-on-rss", "256"])
            == "--evil-reload-on-rss (256) must be at least --reload-on-rss (512)")
        #expect(failure(["--evil-reload-on-rss", "256"]) == nil)
        #expect(failure(["--reload-on-rss", "256"]) == nil)
    }

    @Test func appAndLibrary() {
        #expect(failure(["--app", "echo", "--app-library", "lib.so"]) == "--app and --app-library are mutually exclusive: give one")
        #expect(failure(["--app-library", "lib.so"]) == nil)
        #expect(failure(["--app", "hello", "--app-library", "lib.so"]) != nil)
        #expect(validationFailure { $0.app = .staticFiles(directory: "") } == "--app: static:DIR needs a directory")
    }

    @Test func handBuiltRanges() {
        #expect(validationFailure { $0.listenBacklog = 0 } != nil)
        #expect(validationFailure { $0.bufferSizeBytes = 0 } != nil)
        #expect(validationFailure { $0.headerTimeoutNanoseconds = 0 } != nil)
        #expect(validationFailure { $0.cheaperStep = 0 } != nil)
        #expect(validationFailure { $0.cheaper = -1 } != nil)
        #expect(validationFailure { $0.chmodSocket = 0o10000 } != nil)
    }
}

@Suite struct Help {
    @Test func listsEveryFlagWithItsDefault() {
        let help = ServerOptions.helpText
        for spec in optionTable {
            let line = help.split(separator: "\n").first { $0.hasPrefix("  --\(spec.name) ") || $0 == "  --\(spec.name)" }
            #expect(line != nil, "--\(spec.name) missing from help")
            for alias in spec.aliases { #expect(help.contains("--\(alias)")) }
            if let d = spec.defaultText {
                // The entry runs until the next flag's line or a blank line.
                let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                let i = lines.firstIndex { $0.hasPrefix("  --\(spec.name) ") || $0 == "  --\(spec.name)" } ?? 0
                let entry = lines[i...].prefix { $0 == lines[i] || $0.hasPrefix("    ") }.joined(separator: " ")
                #expect(entry.contains("(default: \(d))"), "--\(spec.name): \(entry)")
            }
        }
        for line in help.split(separator: "\n") { #expect(line.count <= 100, "\(line)") }
    }

    @Test func specificDefaults() {
        let help = ServerOptions.helpText
        for expected in ["(default: number of cores)", "(default: 1024)", "(default: hello)", "(default: 8k)",
                         "(default: 75)", "(default: TERM)", "(default: 33)", "(default: 25)", "(default: 50)"] {
            #expect(help.contains(expected), "\(expected)")
        }
        #expect(help.contains("SWSGI_"))
        #expect(help.contains("[swsgi]"))
    }

    @Test func tableIsConsistent() {
        var seen = Set<String>()
        for spec in optionTable {
            for name in spec.names {
                #expect(seen.insert(name).inserted, "duplicate \(name)")
                #expect(name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" })
            }
            // `--mule [FILE]` takes a value or stands alone.
            #expect(spec.isBoolean == (spec.valueName == nil) || spec.optionalValue)
            #expect(spec.help.count < 100)
        }
        #expect(optionTable.count == 160)
    }
}

/// uWSGI's static rules: the value forms uwsgi_opt_add_regexp_dyn_dict and uwsgi_opt_add_dyn_dict take.
@Suite struct StaticRuleValues {
    @Test func expiresAndGzipValues() throws {
        let o = try options(["--ini", "app.ini"], ini: "[uwsgi]\nstatic-expires = /data/static/* 2592000\nstatic-expires-uri=/static/* 3600\nstatic-expires-type = text/css=60\nstatic-gzip-all = true\nstatic-gzip-prefix = /srv\nstatic-safe = /srv/media\n")
        #expect(o.staticFiles.expires == [ExpiresRule(subject: .file, pattern: "/data/static/*", seconds: 2592000, fromModification: false),
                                          ExpiresRule(subject: .uri, pattern: "/static/*", seconds: 3600, fromModification: false)])
        #expect(o.staticFiles.expiresByType == [ExpiresTypeRule(contentType: "text/css", seconds: 60, fromModification: false)])
        #expect(o.staticFiles.gzipAll && o.staticFiles.gzipPrefixes == ["/srv"] && o.staticFiles.safe == ["/srv/media"])
        #expect(failure(["--static-expires", "/css/"])?.contains("expected REGEX SECONDS") == true)
        #expect(failure(["--static-expires", "( 60"])?.contains("not a regular expression") == true)
        #expect(failure(["--static-expires", "/css/ soon"])?.contains("not a number of seconds") == true)
        #expect(failure(["--static-expires-type", "text/css"])?.contains("expected TYPE=SECONDS") == true)
        // offload-threads: uWSGI's value forms (strtol; 0 starts none, below 0 uWSGI exits), its alias, our flag.
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\noffload-threads = 2\n").offloadThreads == 2)
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\noffload-thread = 3\n").offloadThreads == 3)
        #expect(throws: (any Error).self) { try options(["--ini", "app.ini"], ini: "[uwsgi]\noffload-threads = -1\n") }
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\noffload-threads = true\n").offloadThreads == 0)
        #expect(try options(["--offload-threads", "4"]).offloadThreads == 4)
        #expect(failure(["--offload-threads", "many"]) != nil)
        // socket-timeout bounds response writes too, as uWSGI's (uwsgi_wait_write_req).
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nsocket-timeout = 7\n").writeTimeoutNanoseconds == 7_000_000_000)
    }
}

/// uWSGI's master commands: cron lines, attach-daemon2 keyvals, and what is refused.
@Suite struct MasterCommandValues {
    @Test func cronAndDaemons() throws {
        let o = try options(["--ini", "app.ini"], ini: "[uwsgi]\ncron = -10 8 -1 -1 -1 python3 -m app.spider.index\nunique-cron = 0 0 -1 -1 -1 sh -c 'find /b -mtime +30 | xargs -r rm'\nattach-daemon = ./manage.py sendalerts\nattach-daemon2 = cmd=celery beat,stopsignal=INT,max_throttle=9\n")
        #expect(o.cronCommands.map(\.command) == ["python3 -m app.spider.index", "sh -c 'find /b -mtime +30 | xargs -r rm'"])
        #expect(o.cronCommands[0].minute == -10 && o.cronCommands[0].hour == 8 && !o.cronCommands[0].unique && o.cronCommands[1].unique)
        #expect(o.daemons.map(\.command) == ["./manage.py sendalerts", "celery beat"])
        #expect(o.daemons[1].stopSignal == 2 && o.daemons[1].maxThrottleSeconds == 9)
        #expect(failure(["--cron", "0 0 -1 -1 cmd"])?.contains("expected MINUTE HOUR DAY MONTH WEEKDAY COMMAND") == true)
        #expect(failure(["--cron", "61 0 -1 -1 -1 cmd"])?.contains("minute 61 is out of range") == true)
        #expect(failure(["--cron", "0 0 -1 -1 -1"])?.contains("the command is missing") == true)
        #expect(failure(["--attach-daemon2", "cmd=x,pidfile=/run/x.pid"])?.contains("not supported") == true)
        #expect(failure(["--attach-daemon2", "stopsignal=INT"])?.contains("cmd=COMMAND is missing") == true)
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nsmart-attach-daemon = /run/c.pid celery beat\n")?.contains("attach-daemon") == true)
    }
}
