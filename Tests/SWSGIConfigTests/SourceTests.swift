@testable import SWSGIConfig
import Testing

@Suite struct CommandLineSyntax {
    @Test func forms() throws {
        let o = try options(["--processes", "3", "--listen=128", "--socket=/run/a.sock", "--chmod-socket", "0660"])
        #expect(o.processes == 3)
        #expect(o.listenBacklog == 128)
        #expect(o.socket == ["/run/a.sock"])
        #expect(o.chmodSocket == 0o660)
    }

    /// Listeners add up within one source (uWSGI's repeated `socket =`), and a higher source replaces the
    /// lower one's: `--socket` on the command line moves the server rather than adding a listener.
    @Test func listenersAddUpWithinASourceAndAHigherSourceReplacesThem() throws {
        let ini = "[uwsgi]\nsocket = /run/u.sock\nhttp = :8000\nsocket = /run/v.sock\nmodule = a\n"
        let fromIni = try options(["--ini", "app.ini"], ini: ini)
        #expect(fromIni.listeners.map(\.description) == ["http::8000", "uwsgi:/run/u.sock", "uwsgi:/run/v.sock"])
        #expect(try options(["--ini", "app.ini", "--socket", "/run/c.sock"], ini: ini).listeners.map(\.description) == ["http:/run/c.sock"])
        #expect(try options(["--ini", "app.ini"], env: ["SWSGI_HTTP_SOCKET=:9000"], ini: ini).listeners.map(\.description) == ["http::9000"])
        #expect(try options(["--ini", "app.ini", "--processes", "2"], ini: ini).listeners == fromIni.listeners)
    }

    @Test func valueWithEquals() throws {
        #expect(try options(["--procname-prefix=a=b"]).procnamePrefix == "a=b")
    }

    @Test func repeatedFlagLastWins() throws {
        #expect(try options(["--processes", "3", "--processes", "5"]).processes == 5)
        #expect(try options(["--app", "echo", "--app", "sleep"]).app == .sleep)
    }

    @Test func defaultsWithNoArguments() throws {
        #expect(try options([], cores: 6) == ServerOptions(cores: 6))
        #expect(try options([], cores: 6).processes == 6)
        #expect(try options([], cores: 0).processes == 1)
        #expect(try !options([]).hasExplicitListener)
    }

    @Test func unknownFlag() {
        #expect(failure(["--proceses", "4"]) == "unknown option '--proceses' (did you mean '--processes'?)")
        #expect(failure(["--frobnicate"]) == "unknown option '--frobnicate'")
        #expect(failure(["--max_requests", "4"]) == "unknown option '--max_requests' (did you mean '--max-requests'?)")
        #expect(failure(["-processes", "4"])?.hasPrefix("unknown option '-processes' (did you mean '--processes'?)") == true)
        #expect(failure(["-x"]) != nil)
    }

    @Test func positional() {
        #expect(failure(["app.py"]) == "unexpected argument 'app.py': swsgi takes only --options (see --help)")
        #expect(failure(["--"]) != nil)
        #expect(failure(["-"]) != nil)
        #expect(failure(["--processes", "2", "3"])?.contains("unexpected argument '3'") == true)
    }

    @Test func missingValue() {
        #expect(failure(["--processes"]) == "--processes needs a value")
        #expect(failure(["--socket", "--processes", "2"])?.hasPrefix("--socket needs a value (got '--processes'") == true)
        #expect(failure(["--ini"]) == "--ini needs a value")
        #expect(failure(["--ini="]) != nil)
    }

    @Test func negativeNumberIsAValue() {
        #expect(failure(["--processes", "-2"])?.hasPrefix("--processes: '-2'") == true)
    }

    @Test func helpAndVersion() throws {
        #expect(try load(["--help"]) == .help)
        #expect(try load(["-h"]) == .help)
        #expect(try load(["--version"]) == .version)
        #expect(try load(["--processes", "2", "--version"]) == .version)
        // They win over errors elsewhere on the line, and over a broken environment or ini file.
        #expect(try load(["--bogus", "--help"]) == .help)
        #expect(try load(["--processes", "x", "--help"]) == .help)
        #expect(try load(["--help"], env: ["SWSGI_BOGUS=1"]) == .help)
        #expect(try load(["--ini", "missing.ini", "--help"]) == .help)
        #expect(failure(["--help=yes"]) == "--help takes no value")
    }

    @Test func alias() throws {
        #expect(try options(["--harakiri-queue-threshold", "7"]).harakiriGracefulQueueThreshold == 7)
        #expect(try options(["--harakiri-graceful-queue-threshold=8"]).harakiriGracefulQueueThreshold == 8)
        #expect(failure(["--harakiri-queue-threshold", "x"]) == "--harakiri-queue-threshold: 'x' is not a whole number")
        #expect(try options(env: ["SWSGI_HARAKIRI_QUEUE_THRESHOLD=9"]).harakiriGracefulQueueThreshold == 9)
        #expect(try options(["--ini", "app.ini"], ini: "[swsgi]\nharakiri-queue-threshold = 10\n").harakiriGracefulQueueThreshold == 10)
    }

    @Test func everyOptionParsesFromTheCommandLine() throws {
        // One valid value per option, so no row of the table is left unreachable.
        let samples: [String: String] = [
            "processes": "8", "socket": "/run/x.sock", "chmod-socket": "660", "chown-socket": "www",
            "http-socket": ":80", "listen": "10", "app": "echo", "app-library": "x.so", "buffer-size": "4k",
            "limit-post": "2m", "limit-request-line": "1k", "limit-request-field-size": "1k", "limit-request-fields": "5", "underscore-headers": "refuse", "header-timeout": "5", "body-timeout": "5", "keepalive-timeout": "5", "worker-reload-mercy": "5",
            "pid-file": "p", "vacuum": "false", "offload-threads": "2", "write-timeout": "5", "stats": "/run/s.sock", "disable-logging": "true", "log-4xx": "true", "log-5xx": "true",
            "procname-prefix": "x", "uid": "nobody", "gid": "nogroup", "harakiri": "1", "harakiri-graceful-timeout": "1", "harakiri-graceful-signal": "USR2",
            "harakiri-graceful-queue-threshold": "1", "max-requests": "5", "max-requests-delta": "1",
            "max-worker-lifetime": "5", "max-worker-lifetime-delta": "1", "reload-on-rss": "5",
            "evil-reload-on-rss": "6", "cheaper": "1", "cheaper-initial": "2", "cheaper-step": "2",
            "cheaper-overload": "2", "cheaper-busyness-min": "10", "cheaper-busyness-max": "90",
            "cheaper-busyness-multiplier": "2", "cheaper-busyness-backlog-alert": "2",
            "cheaper-busyness-backlog-step": "2", "cheaper-rss-limit-soft": "1m", "cheaper-rss-limit-hard": "2m",
            "uwsgi-socket": "127.0.0.1:3031", "wsgi-file": "app.py", "module": "app:application", "callable": "app",
            "pythonpath": "/srv", "chdir": "/srv", "python-lib": "/usr/lib/libpython3.11.so", "home": "/srv/venv", "python-executable": "/srv/venv/bin/python",
            "lazy-apps": "true", "need-app": "false", "py-call-osafterfork": "false", "enable-threads": "false", "threads": "2",
            "cache2": "name=a,items=1", "locks": "2", "mule": "true", "log-encoder": "json", "log-format": "%(uri)",
            "hook-asap": "print:x", "hook-pre-app": "mkdir:d", "hook-post-app": "unlink:f", "hook-accepting": "write:f x",
            "exec-asap": "true", "exec-pre-app": "true", "exec-post-app": "true", "exec-accepting": "true",
            "show-config": "true", "logto": "/tmp/l", "daemonize": "/tmp/d", "logfile-chmod": "600", "log-reopen": "true",
            "env": "A=1", "umask": "022", "static-map": "/s=/srv/s", "touch-reload": "/tmp/r", "memory-report": "true",
            "limit-as": "512", "max-fd": "2048", "cpu-affinity": "1", "reload-on-as": "512", "evil-reload-on-as": "1024",
            "procname": "app", "procname-master": "app master", "procname-append": " [x]", "reload-on-exception": "true",
            "disable-write-exception": "true", "wsgi-disable-file-wrapper": "true", "post-buffering": "4k",
            "touch-chain-reload": "/tmp/c", "mount": "/api=api.py", "manage-script-name": "true", "paste": "config:/p.ini",
            "paste-name": "other", "paste-logger": "true", "py-sys-executable": "/x/python", "optimize": "1",
            "pyargv": "-v", "import": "m", "shared-import": "m", "py-autoreload": "1", "py-autoreload-ignore": "m",
            "logger": "file:/tmp/x.log", "req-logger": "stdio", "log-route": "a ^x", "log-req-route": "a ^x",
            "log-req-encoder": "nl", "log-maxsize": "1m", "log-backupname": "/tmp/x.old", "log-date": "true",
            "logformat-strftime": "true", "log-micros": "true", "log-slow": "100", "log-big": "1m", "log-zero": "true",
            "log-sendfile": "true", "log-ioerror": "true", "log-x-forwarded-for": "true", "logfile-chown": "true",
            "route": "^/health donotlog:", "log-truncate": "true", "log-drain": "^x", "log-filter": "^x", "log-syslog": "app",
            "enable-proxy-protocol": "true", "static-index": "index.htm", "static-expires": "/css/.* 3600",
            "static-expires-mtime": "\\.png$ 60", "static-expires-uri": "^/s/ 60", "static-expires-uri-mtime": "^/s/ 60",
            "static-expires-path-info": "^/a 1", "static-expires-path-info-mtime": "^/a 1", "static-expires-type": "text/css=60",
            "static-expires-type-mtime": "image/png=60", "static-gzip-all": "true", "static-gzip": "\\.js$", "static-gzip-dir": "/srv/s",
            "static-gzip-ext": ".css", "static-safe": "/srv/shared", "static-skip-ext": ".py", "master-fifo": "/run/fifo",
            "attach-daemon": "sleep 9", "attach-control-daemon": "sleep 9", "attach-daemon2": "cmd=sleep 9", "cron": "0 3 -1 -1 -1 true",
            "unique-cron": "0 3 -1 -1 -1 true",
        ]
        let defaults = ServerOptions(cores: 4)
        for spec in optionTable {
            guard case .setting(let set) = spec.role else { continue }
            let value = try #require(samples[spec.name], "no sample for \(spec.name)")
            var o = defaults
            try set(&o, value)
            #expect(o != defaults, "--\(spec.name) \(value) changed nothing")
        }
    }
}

@Suite struct Environment {
    @Test func names() throws {
        let o = try options(env: [
            "SWSGI_PROCESSES=3", "SWSGI_HARAKIRI=20", "SWSGI_HARAKIRI_GRACEFUL_TIMEOUT=5",
            "SWSGI_LOG_4XX=yes", "SWSGI_HTTP_SOCKET=:8080", "PATH=/usr/bin", "HOME=/root", "swsgi_processes=9",
        ])
        #expect(o.processes == 3)
        #expect(o.harakiriNanoseconds == 20 * s)
        #expect(o.harakiriGracefulTimeoutNanoseconds == 5 * s)
        #expect(o.log4xx)
        #expect(o.httpSocket == [HTTPSocketAddress(host: "", port: 8080)])
    }

    @Test func environmentNameMapping() {
        #expect(OptionSpec.environmentName("harakiri-graceful-timeout") == "SWSGI_HARAKIRI_GRACEFUL_TIMEOUT")
        #expect(OptionSpec.environmentName("log-4xx") == "SWSGI_LOG_4XX")
    }

    @Test func badValueNamesTheVariable() {
        #expect(failure(env: ["SWSGI_PROCESSES=abc"]) == "SWSGI_PROCESSES: 'abc' is not a whole number")
        #expect(failure(env: ["SWSGI_PROCESSES="]) == "SWSGI_PROCESSES: '' is not a whole number")
        #expect(failure(env: ["SWSGI_LOG_4XX=\n"]) == "SWSGI_LOG_4XX: '\\n' is not a boolean (true/false, yes/no, on/off, 1/0)")
    }

    @Test func unknownVariables() {
        #expect(failure(env: ["SWSGI_PROCESES=4"]) == "SWSGI_PROCESES: unknown swsgi setting (did you mean 'SWSGI_PROCESSES'?)")
        #expect(failure(env: ["SWSGI_FOO=1"]) == "SWSGI_FOO: unknown swsgi setting")
        #expect(failure(env: ["SWSGI_processes=4"]) != nil)
        #expect(failure(env: ["SWSGI_=4"]) != nil)
        #expect(failure(env: ["SWSGI_HELP=1"]) == "SWSGI_HELP: --help is a command-line flag only")
        #expect(failure(env: ["SWSGI_VERSION=1"]) != nil)
        #expect(failure(env: ["SWSGI_NOEQUALS"]) != nil)
    }

    @Test func iniFromEnvironment() throws {
        let ini = "[swsgi]\nprocesses = 7\n"
        #expect(try options(env: ["SWSGI_INI=app.ini"], ini: ini).processes == 7)
        #expect(failure(env: ["SWSGI_INI=nope.ini"]) == "SWSGI_INI 'nope.ini': cannot read the file: No such file or directory")
        #expect(failure(env: ["SWSGI_INI="]) == "SWSGI_INI: '' is not a file path")
        // The command line's --ini wins over SWSGI_INI.
        #expect(try options(["--ini", "app.ini"], env: ["SWSGI_INI=nope.ini"], ini: ini).processes == 7)
    }
}

@Suite struct IniFiles {
    @Test func syntax() throws {
        let ini = """
            ; a comment
            # another comment

            [uwsgi]
            processes = 99
            this line is ignored, as uWSGI ignores other sections
            [swsgi]
              processes   =   6\t
            socket = /run/app.sock
            chmod-socket=660
            log-4xx = on
            log-5xx = 0
            disable-logging = YES
            procname-prefix =
               ; indented comment
            harakiri = 0.5
            [other]
            processes = 1
            [swsgi]
            listen = 50
            """
        let o = try options(["--ini", "app.ini"], ini: ini)
        #expect(o.processes == 6)
        #expect(o.socket == ["/run/app.sock"])
        #expect(o.chmodSocket == 0o660)
        #expect(o.log4xx && !o.log5xx && o.disableLogging)
        #expect(o.procnamePrefix == "")
        #expect(o.harakiriNanoseconds == s / 2)
        #expect(o.listenBacklog == 50)
    }

    @Test func crlfAndNoTrailingNewline() throws {
        let o = try options(["--ini", "app.ini"], ini: "[swsgi]\r\nprocesses = 2\r\nlisten = 3")
        #expect(o.processes == 2 && o.listenBacklog == 3)
    }

    @Test func valuesAreRaw() throws {
        #expect(try options(["--ini=app.ini"], ini: "[swsgi]\nprocname-prefix = \"web\" ; x\n").procnamePrefix == "\"web\" ; x")
        #expect(try options(["--ini=app.ini"], ini: "[swsgi]\npid-file = a=b\n").pidFile == "a=b")
    }

    @Test func repeatedKeysLastWins() throws {
        let o = try options(["--ini", "app.ini"], ini: "[swsgi]\nprocesses = 2\napp = echo\nprocesses = 3\napp = static:/srv\n")
        #expect(o.processes == 3)
        #expect(o.app == .staticFiles(directory: "/srv"))
    }

    @Test func emptyFileAndOnlyOtherSections() throws {
        #expect(try options(["--ini", "app.ini"], ini: "") == ServerOptions(cores: 4))
        #expect(try options(["--ini", "app.ini"], ini: "[uwsgi]\nmaster = true\n") == ServerOptions(cores: 4))
    }

    @Test func errorsNameFileAndLine() {
        func iniFailure(_ text: String) -> String? { failure(["--ini", "app.ini"], ini: text) }
        #expect(iniFailure("[swsgi]\nprocesses = 2\n\n; c\nproceses = 4\n")
            == "app.ini:5: unknown option 'proceses' (did you mean 'processes'?)")
        #expect(iniFailure("[swsgi]\nprocesses\n") == "app.ini:2: malformed line 'processes' (expected key = value)")
        #expect(iniFailure("[swsgi]\n= 4\n") == "app.ini:2: malformed line '= 4' (no key before =)")
        #expect(iniFailure("[swsgi]\n\nprocesses = abc\n") == "app.ini:3: processes: 'abc' is not a whole number")
        #expect(iniFailure("processes = 2\n[swsgi]\n") == "app.ini:1: 'processes = 2' is outside any section; put options under [swsgi]")
        #expect(iniFailure("[swsgi\nprocesses = 2\n") == "app.ini:1: malformed section header '[swsgi' (expected [swsgi])")
        #expect(iniFailure("[swsgi]\nini = other.ini\n") == "app.ini:2: 'ini' cannot be set in an ini file")
        #expect(iniFailure("[swsgi]\nhelp = true\n") != nil)
        #expect(iniFailure("[swsgi]\nmax_requests = 3\n") == "app.ini:2: unknown option 'max_requests' (did you mean 'max-requests'?)")
        #expect(iniFailure("[swsgi]\nharakiri-graceful-signal = KILL\n")?.hasPrefix("app.ini:2: harakiri-graceful-signal: 'KILL' cannot be caught") == true)
        #expect(iniFailure("[swsgi]\r\nlisten = x\r\n") == "app.ini:2: listen: 'x' is not a whole number")
    }

    @Test func unreadableFile() {
        #expect(failure(["--ini", "missing.ini"]) == "--ini 'missing.ini': cannot read the file: No such file or directory")
    }

    @Test func readsThePathGiven() throws {
        var asked: [String] = []
        _ = try ServerOptions.load(arguments: ["--ini", "/etc/a.ini", "--ini", "/etc/b.ini"], environment: [], cores: 1) { path in
            asked.append(path)
            return ""
        }
        #expect(asked == ["/etc/b.ini"])
        _ = try ServerOptions.load(arguments: [], environment: [], cores: 1) { path in
            asked.append(path)
            return ""
        }
        #expect(asked == ["/etc/b.ini"], "no ini file means no read")
    }
}

@Suite struct Precedence {
    let ini = "[swsgi]\nprocesses = 2\nlisten = 20\nharakiri = 30\napp = echo\n"

    @Test func iniBelowEnvironmentBelowCommandLine() throws {
        let o = try options(["--ini", "app.ini", "--processes", "4"],
                            env: ["SWSGI_PROCESSES=3", "SWSGI_LISTEN=30"], ini: ini)
        #expect(o.processes == 4)  // command line
        #expect(o.listenBacklog == 30)  // environment over ini
        #expect(o.harakiriNanoseconds == 30 * s)  // ini over default
        #expect(o.app == .echo)
        #expect(o.keepaliveTimeoutNanoseconds == 75 * s)  // default
    }

    @Test func orderOnTheCommandLineDoesNotMatter() throws {
        let o = try options(["--processes", "4", "--ini", "app.ini"], ini: ini)
        #expect(o.processes == 4)
    }

    @Test func validationSeesTheMergedResult() throws {
        // The ini's cheaper would break processes=2, but the command line raises processes.
        let o = try options(["--ini", "app.ini", "--processes", "8"], env: ["SWSGI_CHEAPER=4"], ini: ini)
        #expect(o.cheaper == 4)
        #expect(failure(["--ini", "app.ini"], env: ["SWSGI_CHEAPER=4"], ini: ini) == "--cheaper (4) must be below --processes (2)")
    }
}

@Suite struct ServicesOptionsParsing {
    @Test func repeatableOptionsAppendInOrderFromEverySource() throws {
        let o = try options(["--cache2", "name=b,items=5,blocksize=1k,keysize=16", "--mule", "--mule", "reporter", "--mule=x",
                             "--hook-asap", "print:one", "--exec-asap", "echo two"],
                            env: ["SWSGI_CACHE2=name=a,items=1"])
        #expect(o.caches == [CacheOptions(name: "a", items: 1), CacheOptions(name: "b", items: 5, blockSizeBytes: 1024, keySizeBytes: 16)])
        #expect(o.mules == [.dispatcher, .file("reporter"), .file("x")])
        #expect(o.hooks == [Hook(phase: .asap, action: .print("one")), Hook(phase: .asap, action: .exec("echo two"))])
    }

    @Test func muleAloneBeforeAnotherOption() throws {
        let o = try options(["--mule", "--processes", "3"])
        #expect(o.mules == [.dispatcher])
        #expect(o.processes == 3)
    }

    @Test func hookActionsParse() throws {
        #expect(try options(["--hook-pre-app", "write:/tmp/f hello world"]).hooks == [Hook(phase: .preApp, action: .write(path: "/tmp/f", text: "hello world"))])
        #expect(failure(["--hook-asap", "mkdir:"])?.contains("needs an argument") == true)
        #expect(failure(["--hook-asap", "nocolon"])?.contains("expected ACTION:ARG") == true)
        #expect(failure(["--exec-asap", ""])?.contains("is not a command") == true)
    }

    @Test func logTemplates() throws {
        #expect(try options(["--log-encoder", "format [${time}] ${msg}"]).logging.encoders
                == [LogEncoderStep(kind: .format([.literal("["), .variable("time"), .literal("] "), .variable("msg")]), useFor: nil)])
        #expect(failure(["--log-encoder", "format ${nope}"])?.contains("unknown variable 'nope'") == true)
        // uWSGI leaves an unclosed placeholder as text; an unknown name is refused (a typo, or a logvar swsgi lacks).
        #expect(try options(["--log-format", "%(method"]).logging.format == "%(method")
        #expect(failure(["--log-format", "%(method) %(nope)"])?.contains("unknown variable %(nope)") == true)
        #expect(failure(["--log-format", "%(metric.x)"])?.contains("no metrics") == true)
    }
}
