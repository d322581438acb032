import Foundation
@testable import SWSGIConfig
import Testing

/// The production config widely shared for uWSGI ("Configuring uWSGI for Production Deployment"),
/// with its inline comments, quotes and the `py-callos-afterfork` typo fixed (see `typoGetsDidYouMean`).
let sharedUwsgiConfig = """
    [uwsgi]
    strict = true
    master = true
    enable-threads = true
    vacuum = true                        ; Delete sockets during shutdown
    single-interpreter = true
    die-on-term = true                   ; Shutdown when receiving SIGTERM (default is respawn)
    need-app = true

    disable-logging = true               ; Disable built-in logging
    log-4xx = true                       ; but log 4xx's anyway
    log-5xx = true                       ; and 5xx's

    harakiri = 60                        ; forcefully kill workers after 60 seconds
    py-call-osafterfork = true           ; allow workers to trap signals

    max-requests = 1000                  ; Restart workers after this many requests
    max-worker-lifetime = 3600           ; Restart workers after this many seconds
    reload-on-rss = 2048                 ; Restart workers after this much resident memory
    worker-reload-mercy = 60             ; How long to wait before forcefully killing workers

    cheaper-algo = busyness
    processes = 128                      ; Maximum number of workers allowed
    cheaper = 8                          ; Minimum number of workers allowed
    cheaper-initial = 16                 ; Workers created at startup
    cheaper-overload = 1                 ; Length of a cycle in seconds
    cheaper-step = 16                    ; How many workers to spawn at a time

    cheaper-busyness-multiplier = 30     ; How many cycles to wait before killing workers
    cheaper-busyness-min = 20            ; Below this threshold, kill workers (if stable for multiplier cycles)
    cheaper-busyness-max = 70            ; Above this threshold, spawn new workers
    cheaper-busyness-backlog-alert = 16  ; Spawn emergency workers if more than this many requests are waiting in the queue
    cheaper-busyness-backlog-step = 2    ; How many emergency workers to create if there are too many requests in the queue

    auto-procname = true
    procname-prefix = "mysvc "
    module = app:application
    lazy-apps = true
    threads = 1
    socket = /run/app/uwsgi.sock
    """

@Suite struct UwsgiIni {
    @Test func theSharedProductionConfigTakesEffect() throws {
        let o = try options(["--ini", "app.ini"], ini: sharedUwsgiConfig)
        #expect(o.uwsgiSocket == [.unix("/run/app/uwsgi.sock")], "socket = in [uwsgi] is the uwsgi protocol")
        #expect(o.socket.isEmpty && o.httpSocket.isEmpty)
        #expect(o.disableLogging && o.log4xx && o.log5xx)
        #expect(o.harakiriNanoseconds == 60 * 1_000_000_000)
        #expect(o.maxRequests == 1000 && o.maxWorkerLifetimeNanoseconds == 3600 * 1_000_000_000)
        #expect(o.reloadOnRSSMiB == 2048 && o.workerReloadMercyNanoseconds == 60 * 1_000_000_000)
        #expect(o.processes == 128 && o.cheaper == 8 && o.cheaperInitial == 16 && o.cheaperStep == 16)
        #expect(o.cheaperOverloadNanoseconds == 1_000_000_000)
        #expect(o.cheaperBusynessMultiplier == 30 && o.cheaperBusynessMin == 20 && o.cheaperBusynessMax == 70)
        #expect(o.cheaperBusynessBacklogAlert == 16 && o.cheaperBusynessBacklogStep == 2)
        #expect(o.procnamePrefix == "mysvc ", "the quotes keep the trailing space and are not part of the value")
        #expect(o.python.module == "app:application" && o.python.lazyApps && o.python.threads == 1)
    }

    /// Values uWSGI takes for these keys, each with the meaning swsgi gives it: `strict = false` is not strict
    /// (a typo warns), `stats-http = false` changes nothing (the stats server answers both kinds of client), a
    /// plugin named with its Python version's dot (`python3.6`) is the built-in Python.
    @Test func valuesUwsgiTakesForStrictStatsHttpAndPythonPlugins() throws {
        guard case .run(let o) = try load(["--ini", "app.ini"], ini: "[uwsgi]\nstrict = false\nproceses = 2\nstats-http = false\nplugin = python3.6\nplugins = python3.11,http\n")
        else { Issue.record("not run"); return }
        #expect(o.configWarnings.count == 1 && o.configWarnings[0].hasPrefix("app.ini:3: unknown option 'proceses' (did you mean 'processes'?)"),
                "\(o.configWarnings)")
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nstrict\nproceses = 2\n")?.contains("strict = true") == true)
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nplugin = python3.x\n")?.contains("is not built into swsgi") == true)
    }

    /// `module =` names what importlib.import_module finds: a package directory with a dash in its name
    /// (`Web-SQL-Console/wsgi.py`) is one; a path or an empty part is not: valid configuration (uWSGI's
    /// fails at app load), with a warning saying the import will fail.
    @Test func moduleNamesAreWhatImportlibTakes() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nmodule = Web-SQL-Console.wsgi:application\n").python.module
                == "Web-SQL-Console.wsgi:application")
        for bad in ["a..b", "pkg/app", "my app"] {
            #expect(try options(["--module", bad]).configWarnings.first?.contains("'\(bad)' is not a module name like pkg.app") == true, "\(bad)")
        }
        #expect(failure(["--module", ":app"])?.contains("no module before the colon") == true)
        #expect(failure(["--module", "app:"])?.contains("no callable after the colon") == true)
    }

    /// uWSGI keeps an unknown key as a placeholder and runs; so does swsgi, but a near miss of an option is
    /// never silent: one warning with did-you-mean (start-up log and --check). `strict = true` refuses it.
    @Test func typoGetsDidYouMean() throws {
        // The shared config says strict = true, uWSGI's strict mode: there the typo is an error (below).
        let strictIni = sharedUwsgiConfig.replacingOccurrences(of: "py-call-osafterfork = true", with: "py-callos-afterfork = true")
        let ini = strictIni.replacingOccurrences(of: "strict = true", with: "strict = false")
        guard case .run(let o) = try load(["--ini", "app.ini"], ini: ini) else { Issue.record("not run"); return }
        #expect(o.configWarnings == ["app.ini:15: unknown option 'py-callos-afterfork' (did you mean 'py-call-osafterfork'?): kept as a placeholder, "
                                     + "as uWSGI does, so it sets nothing; fix the name or delete the line (strict = true makes this an error)"],
                "\(o.configWarnings)")
        #expect(failure(["--ini", "app.ini"], ini: strictIni)
                == "app.ini:15: unknown option 'py-callos-afterfork' (did you mean 'py-call-osafterfork'?) (strict = true: declare placeholders with set-placeholder)")
        // A placeholder used as %(name) is no typo: no warning.
        guard case .run(let p) = try load(["--ini", "app.ini"], ini: "[uwsgi]\nthread = 4\nprocname = w%(thread)\n") else { Issue.record("not run"); return }
        #expect(p.configWarnings.isEmpty && p.python.threads == 1, "\(p.configWarnings)")
    }

    @Test(arguments: [
        ("master = false", "app.ini:2: master = false: not supported, swsgi always runs a master process"),
        ("cheaper-algo = spare", "app.ini:2: cheaper-algo = 'spare': not supported; swsgi's cheaper mode is the busyness algorithm"),
        ("gevent-monkey-patch = true", "app.ini:2: gevent-monkey-patch: not supported: swsgi serves gevent = N with request threads and runs no gevent hub; monkey-patching would turn the threads' blocking calls into greenlets waiting on one hub: remove the line"),
        ("http-websockets", "app.ini:2: http-websockets: not supported: swsgi does not speak WebSocket; run the WebSocket part under an ASGI server"),
        ("threads = 1000", "--threads 1000: give 1 to 256 request threads per worker"),
        ("stats = 127.0.0.1:99999", "--stats: '127.0.0.1:99999': the port must be between 1 and 65535"),
    ])
    func refusedLinesNameThemselves(_ line: String, _ message: String) {
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\n\(line)\nmodule = app\n") == message)
    }

    /// `threads = N` (the key most often refused before): request threads per worker, in either section.
    @Test func threadsAreAcceptedInUwsgiAndSwsgiSections() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nthreads = 4\nmodule = a\n").python.threads == 4)
        #expect(try options(["--ini", "app.ini"], ini: "[swsgi]\nthreads = 2\nmodule = a\n").python.threads == 2)
        #expect(try options(["--threads", "8", "--module", "a"]).python.threads == 8)
    }

    @Test func httpAndHttpSocketAreHTTPAndSwsgiSectionWins() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nhttp = :8080\nwsgi-file = a.py\n").httpSocket == [HTTPSocketAddress(host: "", port: 8080)])
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nhttp-socket = 127.0.0.1:9\nmodule = a\n").httpSocket.first?.port == 9)
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nsocket = 127.0.0.1:3031\nmodule = a\n").uwsgiSocket
                == [.tcp(HTTPSocketAddress(host: "127.0.0.1", port: 3031))])
        // A [swsgi] section wins: the [uwsgi] one is then left to uWSGI.
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nsocket = /a\n[swsgi]\nsocket = /b\n").socket == ["/b"])
        // On the command line --socket keeps meaning HTTP.
        #expect(try options(["--socket", "/c"]).socket == ["/c"])
    }

    /// uWSGI's `protocol` is the protocol of every `socket =` that names none (core/socket.c): with
    /// `protocol = http` (or `http11`) a `socket = :8000` speaks HTTP, as `http-socket = :8000` would.
    /// Held-out corpus: 6 of 119 files pair them (OriPekelman/platformsh-example-odoo, JGrubb/django-blog...).
    @Test func protocolHttpMakesSocketsHTTP() throws {
        let tcp = try options(["--ini", "app.ini"], ini: "[uwsgi]\nsocket = :8000\nprotocol = http\nmodule = a\n")
        #expect(tcp.httpSocket == [HTTPSocketAddress(host: "", port: 8000)] && tcp.uwsgiSocket.isEmpty)
        let unix = try options(["--ini", "app.ini"], ini: "[uwsgi]\nprotocol = http11\nsocket = /run/a.sock\nmodule = a\n")
        #expect(unix.socket == ["/run/a.sock"] && unix.uwsgiSocket.isEmpty)
        // uwsgi-socket names its protocol; protocol = uwsgi changes nothing.
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nprotocol = http\nuwsgi-socket = :3031\nmodule = a\n").uwsgiSocket
                == [.tcp(HTTPSocketAddress(host: "", port: 3031))])
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nprotocol = uwsgi\nsocket = :3031\nmodule = a\n").uwsgiSocket
                == [.tcp(HTTPSocketAddress(host: "", port: 3031))])
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\nprotocol = fastcgi\nsocket = :1\nmodule = a\n")?.contains("protocol") == true)
    }
}

/// uWSGI magic variables and comment characters in `[uwsgi]` values (review of issue 11: they were taken
/// literally, and `#svc` read as an empty comment).
@Suite struct UwsgiIniMagicVariables {
    /// Loads `ini` as if it were the file at `path` (not on disk: the path is taken as given).
    func loaded(_ path: String, _ ini: String) throws -> ServerOptions {
        guard case .run(let o) = try ServerOptions.load(arguments: ["--ini", path], environment: [], cores: 4, readFile: { _ in ini }) else {
            throw TestFailure("expected .run")
        }
        return o
    }

    /// uWSGI hands `env` values to the app byte for byte: `PASS=abc #def` is a password with a hash in it,
    /// not a comment, and quotes are part of the value. Cutting it would silently change a secret.
    @Test func envValuesAreKeptWhole() throws {
        let o = try loaded("/srv/app.ini", "[uwsgi]\nenv = PASS=abc #def\nenv = FOO=bar ; x\nenv = Q=\"quoted\"\nmodule = app\n")
        #expect(o.env == ["PASS=abc #def", "FOO=bar ; x", "Q=\"quoted\""])
    }

    @Test func fileVariablesExpandAndLeadingHashIsKept() throws {
        let o = try loaded("/srv/site/app.prod.ini", "[uwsgi]\npythonpath = %dlib\nprocname-prefix = %n/%e/%s %% \nmodule = app\n")
        #expect(o.python.pythonPath == ["/srv/site/lib"])
        #expect(o.procnamePrefix == "app.prod/ini/app.prod.ini %")
        let hash = try loaded("/srv/site/app.ini", "[uwsgi]\nprocname-prefix = #svc\nmodule = app ; the app\n")
        #expect(hash.procnamePrefix == "#svc", "a value starting with # is a value, not a comment")
        #expect(hash.python.module == "app")
    }

    /// uWSGI's rules: an unset `$(VAR)` stays as written (refused when swsgi starts, noted by --check), a
    /// URL in `@(...)` is not fetched, an unknown `%x` is empty.
    @Test(arguments: [
        ("chdir = $(SWSGI_TEST_UNSET)/app", "app.ini:2: chdir = '$(SWSGI_TEST_UNSET)/app': $(SWSGI_TEST_UNSET) is not set in the environment"),
        ("chdir = @(http://config/mod)", "app.ini:2: @(http://config/mod): swsgi fetches no URLs while reading its config (uWSGI does, with its own HTTP client); fetch it with a command: @(exec://curl -fsS URL)"),
    ])
    func unsupportedVariablesAreRefused(_ line: String, _ message: String) {
        #expect(failure(["--ini", "app.ini"], ini: "[uwsgi]\n\(line)\nmodule = app\n")?.split(separator: "\n").first.map(String.init) == message)
    }

    @Test func anUnknownMagicVariableIsEmptyAsInUwsgi() throws {
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\npythonpath = %Zlib\nmodule = app\n").python.pythonPath == ["lib"])
    }
}
