@testable import SWSGIConfig
import Testing

/// The values of uWSGI's logging options as core/logging.c and the logger plugins read them.
struct LoggingOptionsTests {
    @Test func routePatternsThatAreLiteralsAreComparedAsBytes() throws {
        #expect(try LinePattern("^/static/.*").literal == .prefix(Array("/static/".utf8)))
        #expect(try LinePattern("^/healthz$").literal == .exact(Array("/healthz".utf8)))
        #expect(try LinePattern("\\.css$").literal == .suffix(Array(".css".utf8)))
        #expect(try LinePattern("metrics").literal == .contains(Array("metrics".utf8)))
        #expect(try LinePattern("^/healthz/(live|ready)/?$").literal == nil)
        #expect(try LinePattern("^\\d+").literal == nil)
        #expect(try LinePattern("^((?!\\{).)*$").literal == nil)
        #expect(throws: ValueProblem.self) { try LinePattern("(unclosed") }
    }

    /// Swift's Regex backtracks with no step limit (uWSGI's PCRE stops at its match limit): a repeated
    /// group holding a repeat, `^/(a+)+$`, takes 2^n steps on `/aaaa...!`, so a 30-byte path from any
    /// client would hold a worker for hours. Such patterns are refused; one repeat level stays accepted.
    @Test func nestedRepeatsThatBacktrackExponentiallyAreRefused() throws {
        for bad in ["^/(a+)+$", "(a*)*b", "^(?:x+y*)+$", "((ab)+)*c", "(\\w+\\s?)*$", "(.*a){2,}"] {
            #expect(throws: ValueProblem.self, "\(bad)") { try LinePattern(bad) }
            #expect(throws: ValueProblem.self, "\(bad)") { try RouteRule.parse("\(bad) donotlog:") }
        }
        // The static-expires* and static-gzip regexes run on the request URI the same way.
        #expect(throws: ValueProblem.self) { try ValueParser<String>.regex.parse("^/(a+)+$") }
        #expect(try ValueParser<String>.regex.parse("^/static/.+\\.css$") == "^/static/.+\\.css$")
        for good in ["^((?!\\{).)*$", "^/healthz/(live|ready)/?$", "^/api/(v1|v2)/.*$", "(ab)+c", "[(a+)]+", "\\(a+\\)+", "(a+)?b", "(a+){1}"] {
            #expect(throws: Never.self, "\(good)") { try LinePattern(good) }
        }
    }

    @Test func loggersParseAsUwsgiReadsThem() throws {
        #expect(try LoggerSpec.parse("stdio") == LoggerSpec(id: nil, kind: .stdio))
        #expect(try LoggerSpec.parse("applogger stdio") == LoggerSpec(id: "applogger", kind: .stdio))
        #expect(try LoggerSpec.parse("file:/var/log/a.log") == LoggerSpec(id: nil, kind: .file(path: "/var/log/a.log", maxSize: 0, backupName: nil)))
        #expect(try LoggerSpec.parse("file:logfile=/tmp/r.log,maxsize=2000000")
                == LoggerSpec(id: nil, kind: .file(path: "/tmp/r.log", maxSize: 2_000_000, backupName: nil)))
        #expect(try LoggerSpec.parse("uwsgirequest file:/tmp/x.log").id == "uwsgirequest")
        #expect(try LoggerSpec.parse("syslog:uwsgi") == LoggerSpec(id: nil, kind: .syslog(ident: "uwsgi", facility: 3 << 3)))
        #expect(try LoggerSpec.parse("syslog:app,local0") == LoggerSpec(id: nil, kind: .syslog(ident: "app", facility: 16 << 3)))
        #expect(try LoggerSpec.parse("rsyslog:10.0.0.1:1514,web") == LoggerSpec(id: nil, kind: .rsyslog(address: "10.0.0.1", port: 1514, prefix: "web", priority: 29)))
        #expect(try LoggerSpec.parse("rsyslog:logs.example") == LoggerSpec(id: nil, kind: .rsyslog(address: "logs.example", port: 514, prefix: nil, priority: 29)))
        #expect(throws: ValueProblem.self) { try LoggerSpec.parse("python") }
        #expect(throws: ValueProblem.self) { try LoggerSpec.parse("file:logfile=/x,colour=red") }
    }

    @Test func encodersAndRoutes() throws {
        let e = try LogEncoderStep.parse("json:default {\"t\": \"${strftime:%d/%b}\", \"m\": \"${msg}\"}")
        #expect(e.useFor == "default")
        #expect(e.kind == .json([.literal("{\"t\": \""), .variable("strftime:%d/%b"), .literal("\", \"m\": \""), .variable("msg"), .literal("\"}")]))
        #expect(try LogEncoderStep.parse("nl").kind == .nl)
        #expect(try LogEncoderStep.parse("prefix [app] ").kind == .prefix("[app] "))
        #expect(try RouteRule.parse("^/health/ donotlog:") == RouteRule(pattern: try LinePattern("^/health/"), action: .donotlog))
        #expect(try RouteRule.parse("^/health/ continue:").action == .stop)
        #expect(throws: ValueProblem.self) { try RouteRule.parse("^/x redirect:/y") }
    }

    @Test func logDateTakesTrueOrAFormat() {
        #expect(LogDate.parse("true") == .ctime)
        #expect(LogDate.parse("1") == .ctime)
        #expect(LogDate.parse("%Y-%m-%d %H:%M:%S,000") == .strftime("%Y-%m-%d %H:%M:%S,000"))
    }
}
