@testable import SWSGIConfig
import Testing

@Suite struct WholeNumbers {
    @Test func parses() throws {
        #expect(try options(["--processes", "8"]).processes == 8)
        #expect(try options(["--listen", "65535"]).listenBacklog == 65535)
        #expect(try options(["--max-requests", "+5000"]).maxRequests == 5000)
    }

    @Test(arguments: ["abc", "", "1.5", "1e3", "0x10", " 3", "3 ", "--", "٣"])
    func rejectsNonNumbers(_ text: String) {
        #expect(cliFailure("listen", text) == "--listen: \(quoted(text)) is not a whole number"
            || cliFailure("listen", text)?.contains("needs a value") == true)
    }

    @Test func exactMessage() {
        #expect(failure(["--processes", "abc"]) == "--processes: 'abc' is not a whole number")
    }

    @Test func ranges() {
        #expect(failure(["--processes", "0"]) == "--processes: '0' is out of range: it must be between 1 and 4096")
        #expect(failure(["--listen", "65536"])?.contains("between 1 and 65535") == true)
        #expect(failure(["--max-requests", "-1"]) == "--max-requests: '-1' is too small: the minimum is 0")
        #expect(failure(["--cheaper-step", "0"]) != nil)
        #expect(failure(["--cheaper-busyness-max", "101"]) != nil)
        #expect(failure(["--max-requests", "99999999999999999999999"]) == "--max-requests: '99999999999999999999999' is too large")
    }
}

@Suite struct Durations {
    @Test func seconds() throws {
        let o = try options(["--harakiri", "30", "--keepalive-timeout", "0", "--worker-reload-mercy", "0.5",
                             "--max-worker-lifetime", "3600", "--max-worker-lifetime-delta", ".25", "--cheaper-overload", "1."])
        #expect(o.harakiriNanoseconds == 30 * s)
        #expect(o.keepaliveTimeoutNanoseconds == 0)
        #expect(o.workerReloadMercyNanoseconds == s / 2)
        #expect(o.maxWorkerLifetimeNanoseconds == 3600 * s)
        #expect(o.maxWorkerLifetimeDeltaNanoseconds == s / 4)
        #expect(o.cheaperOverloadNanoseconds == s)
    }

    @Test func precision() throws {
        #expect(try options(["--harakiri", "0.000000001"]).harakiriNanoseconds == 1)
        #expect(try options(["--harakiri", "1.1234567891"]).harakiriNanoseconds == 1_123_456_789)
        #expect(try options(["--harakiri", "000012"]).harakiriNanoseconds == 12 * s)
    }

    @Test func defaults() {
        let o = ServerOptions(cores: 2)
        #expect(o.headerTimeoutNanoseconds == 10 * s)
        #expect(o.keepaliveTimeoutNanoseconds == 75 * s)
        #expect(o.workerReloadMercyNanoseconds == 60 * s)
        #expect(o.cheaperOverloadNanoseconds == 3 * s)
    }

    @Test func negative() {
        #expect(failure(["--harakiri=-1"]) == "--harakiri: '-1' is negative: durations are seconds >= 0")
        #expect(failure(["--harakiri", "-0.5"]) != nil)
    }

    /// The grammar hupwatch takes too: a unit after the number.
    @Test func unitsAreTheSharedGrammar() throws {
        #expect(failure(["--harakiri=30s"]) == nil)
        #expect(failure(["--harakiri=250ms"]) == nil)
        #expect(failure(["--harakiri=2m"]) == nil)
    }

    @Test(arguments: ["abc", ".", "", "1.2.3", "30x", "s", "1e3", "inf", "nan", "+3", " 1", "1,5"])
    func rejects(_ text: String) {
        #expect(failure(["--harakiri=\(text)"]) != nil)
    }

    @Test func tooLarge() {
        #expect(failure(["--harakiri", "1000000001"])?.contains("too large") == true)
        #expect(failure(["--harakiri", "99999999999999999999999"])?.contains("too large") == true)
        #expect(failure(["--harakiri", "1000000000"]) == nil)
    }

    @Test func positiveOnly() {
        #expect(failure(["--header-timeout", "0"]) == "--header-timeout: '0' must be above 0")
        #expect(failure(["--cheaper-overload", "0.0"]) != nil)
        #expect(failure(["--header-timeout", "0.001"]) == nil)
    }
}

@Suite struct ByteSizes {
    @Test func suffixes() throws {
        #expect(try options(["--buffer-size", "8192"]).bufferSizeBytes == 8192)
        #expect(try options(["--buffer-size", "8k"]).bufferSizeBytes == 8192)
        #expect(try options(["--buffer-size", "16K"]).bufferSizeBytes == 16384)
        #expect(try options(["--limit-post", "64m"]).limitPostBytes == 64 << 20)
        #expect(try options(["--limit-post", "2G"]).limitPostBytes == 2 << 30)
        #expect(try options(["--limit-post", "0"]).limitPostBytes == 0)
        #expect(ServerOptions(cores: 1).bufferSizeBytes == 8192)
    }

    @Test(arguments: ["", "k", "8kb", "8 k", "1.5m", "-1", "-1k", "8t", "abc", "0x10"])
    func rejects(_ text: String) {
        #expect(failure(["--limit-post=\(text)"]) != nil)
    }

    @Test func message() {
        #expect(failure(["--limit-post", "8kb"]) == "--limit-post: '8kb' is not a byte size (a whole number, optionally with k, m or g: 8192, 8k, 64m)")
    }

    @Test func overflowAndRange() {
        #expect(failure(["--limit-post", "9999999999999g"]) == "--limit-post: '9999999999999g' is too large")
        #expect(failure(["--limit-post", "99999999999999999999"]) != nil)
        #expect(failure(["--buffer-size", "0"]) != nil)
        #expect(failure(["--buffer-size", "2g"])?.contains("between 1 and 1073741824 bytes") == true)
    }
}

@Suite struct Signals {
    @Test(arguments: [("TERM", Int32(15)), ("SIGTERM", 15), ("term", 15), ("15", 15), ("USR2", 12),
                      ("SIGABRT", 6), ("ALRM", 14), ("31", 31)])
    func accepts(_ text: String, _ number: Int32) throws {
        #expect(try options(["--harakiri-graceful-signal", text]).harakiriGracefulSignal == number)
    }

    @Test(arguments: ["0", "KILL", "SIGKILL", "9", "STOP", "19", "SIGSTOP", "FOO", "", "SIG", "32", "-15", "015x", "9999999999",
                      // the master-to-worker protocol: retire, exit now, drain
                      "HUP", "1", "sigHup", "INT", "QUIT", "SIGUSR1"])
    func rejects(_ text: String) {
        #expect(failure(["--harakiri-graceful-signal=\(text)"]) != nil)
    }

    @Test func messages() {
        #expect(failure(["--harakiri-graceful-signal", "KILL"])?.hasPrefix("--harakiri-graceful-signal: 'KILL' cannot be caught") == true)
        #expect(failure(["--harakiri-graceful-signal", "BOGUS"])?.contains("is not a known signal") == true)
        #expect(failure(["--harakiri-graceful-signal", "INT"])?.hasPrefix("--harakiri-graceful-signal: 'INT' is reserved") == true)
        #expect(ServerOptions(cores: 1).harakiriGracefulSignal == 15)
    }
}

@Suite struct OctalModes {
    @Test(arguments: [("660", UInt32(0o660)), ("0660", 0o660), ("777", 0o777), ("0", 0), ("7777", 0o7777), ("00660", 0o660), ("600", 0o600)])
    func accepts(_ text: String, _ mode: UInt32) throws {
        #expect(try options(["--chmod-socket", text, "--socket", "/run/a.sock"]).chmodSocket == mode)
    }

    @Test(arguments: ["", "8", "0o660", "rw-rw----", "-660", "17777", "66 0", "0x1"])
    func rejects(_ text: String) {
        #expect(failure(["--chmod-socket=\(text)"]) != nil)
    }
}

@Suite struct Booleans {
    @Test(arguments: ["true", "yes", "on", "1", "TRUE", "Yes"])
    func truthy(_ text: String) throws {
        #expect(try options(["--log-4xx=\(text)"]).log4xx)
    }

    @Test(arguments: ["false", "no", "off", "0", "False"])
    func falsy(_ text: String) throws {
        #expect(try !options(["--log-4xx", "--log-4xx=\(text)"]).log4xx)
    }

    @Test func aloneMeansTrue() throws {
        let o = try options(["--disable-logging", "--log-4xx", "--log-5xx"])
        #expect(o.disableLogging && o.log4xx && o.log5xx)
        #expect(!ServerOptions(cores: 1).disableLogging)
    }

    @Test func rejects() {
        #expect(failure(["--log-5xx=maybe"]) == "--log-5xx: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)")
        #expect(failure(["--log-5xx="]) != nil)
        // A boolean takes no separate value: the next word is a positional argument.
        #expect(failure(["--log-5xx", "true"])?.contains("unexpected argument 'true'") == true)
    }
}

@Suite struct Strings {
    @Test func paths() throws {
        let o = try options(["--pid-file", "/run/swsgi.pid", "--app-library", "./libapp.so", "--procname-prefix", "web "])
        #expect(o.pidFile == "/run/swsgi.pid")
        #expect(o.appLibrary == "./libapp.so")
        #expect(o.procnamePrefix == "web ")
        #expect(try options(["--procname-prefix="]).procnamePrefix == "")
        #expect(ServerOptions(cores: 1).procnamePrefix == "")
    }

    @Test func emptyRefused() {
        #expect(failure(["--pid-file="]) == "--pid-file: needs a value")
        #expect(failure(["--app-library="]) != nil)
        #expect(failure(["--pid-file=a\0b"])?.contains("NUL") == true)
    }

    @Test func unixSocketPaths() throws {
        let path107 = "/" + String(repeating: "a", count: 106)
        #expect(try options(["--socket", path107]).socket == [path107])
        #expect(failure(["--socket", path107 + "a"]) == "--socket: the socket path is 108 bytes, longer than the 107 bytes sun_path allows: \(path107)a")
        #expect(failure(["--stats", path107 + "a"])?.hasPrefix("--stats: the socket path is 108 bytes") == true)
        #expect(failure(["--socket="]) == "--socket: the socket path is empty")
        // Multi-byte characters count in bytes.
        #expect(failure(["--socket", "/" + String(repeating: "é", count: 54)]) != nil)
        #expect(try options(["--stats", "/run/stats.sock"]).statsSocket == "/run/stats.sock")
    }

    @Test(arguments: [("www-data", true), ("www-data:www-data", true), ("1000:1000", true), ("nginx:", false),
                      (":grp", false), ("a:b:c", false), ("", false), ("a b", false)])
    func owner(_ text: String, _ ok: Bool) throws {
        let error = failure(["--socket", "/run/a.sock", "--chown-socket=\(text)"])
        #expect((error == nil) == ok, "\(error ?? "ok")")
        if ok { #expect(try options(["--chown-socket", text]).chownSocket == text) }
    }
}

@Suite struct HostPort {
    @Test(arguments: [("127.0.0.1:8080", "127.0.0.1", UInt16(8080)), (":8080", "", 8080), ("localhost:1", "localhost", 1),
                      ("[::1]:65535", "::1", 65535), ("0.0.0.0:80", "0.0.0.0", 80), ("[::]:443", "::", 443)])
    func accepts(_ text: String, _ host: String, _ port: UInt16) throws {
        let a = try #require(try options(["--http-socket", text]).httpSocket.first)
        #expect(a == HTTPSocketAddress(host: host, port: port))
    }

    @Test(arguments: ["8080", "host", "host:", "host:65536", "host:80x", "::1:80", "[::1]80", "[]:80",
                      "host:-1", "host:+80", "", ":", "a b:80", "host:99999999999999999999"])
    func rejects(_ text: String) {
        #expect(failure(["--http-socket=\(text)"]) != nil)
    }

    @Test func messages() {
        #expect(failure(["--http-socket", "host:65536"]) == "--http-socket: 'host:65536': the port must be between 0 and 65535")
        // Port 0: a free port the kernel picks (the log names it).
        #expect((try? options(["--http-socket", "127.0.0.1:0"]))?.httpSocket == [HTTPSocketAddress(host: "127.0.0.1", port: 0)])
        #expect(failure(["--http-socket", "8080"])?.hasPrefix("--http-socket: '8080' is not HOST:PORT") == true)
        #expect(HTTPSocketAddress(host: "::1", port: 80).description == "[::1]:80")
        #expect(HTTPSocketAddress(host: "", port: 80).description == ":80")
    }
}

@Suite struct Apps {
    @Test func builtins() throws {
        #expect(try options([]).app == nil)
        #expect(try options([]).effectiveApp == .hello)
        #expect(try options(["--app", "hello"]).app == .hello)
        #expect(try options(["--app", "echo"]).app == .echo)
        #expect(try options(["--app", "sleep"]).app == .sleep)
        #expect(try options(["--app", "static:/srv/www"]).app == .staticFiles(directory: "/srv/www"))
        #expect(BuiltinApp.staticFiles(directory: "/srv").description == "static:/srv")
    }

    @Test func rejects() {
        #expect(failure(["--app", "static:"]) == "--app: static:DIR needs a directory")
        #expect(failure(["--app", "django"])?.hasPrefix("--app: 'django' is not a built-in app") == true)
        #expect(failure(["--app", "Hello"]) != nil)
        #expect(failure(["--app="]) != nil)
    }
}
