import Testing
import Common

@Suite struct CommonTests {
    @Test func durationsTakeSecondsAndUnits() {
        #expect(parseDuration("30") == 30 * nanosecondsPerSecond)
        #expect(parseDuration("1.5") == 1_500_000_000)
        #expect(parseDuration("250ms") == 250_000_000)
        #expect(parseDuration("2m") == 120 * nanosecondsPerSecond)
        for bad in ["", "-1", "nan", "inf", "1e3", "ms", "1.2.3", "1000000001", "1e3s"] { #expect(parseDuration(bad) == nil, "\(bad)") }
    }

    @Test func signalNamesRoundTrip() {
        for (name, number) in SignalName.table {
            #expect(SignalName.parse(name) == number)
            #expect(SignalName.parse("SIG" + name) == number)
            #expect(SignalName.parse(name.lowercased()) == number)
            #expect(SignalName.name(number) == "SIG" + name)
        }
        #expect(SignalName.parse("0") == nil)
        #expect(SignalName.parse("65") == nil)
        #expect(SignalName.parse("NOPE") == nil)
        #expect(SignalName.name(40) == "signal 40")
    }

    @Test func processEndShellCodes() {
        #expect(ProcessEnd.exited(3).shellCode == 3)
        #expect(ProcessEnd.signaled(15).shellCode == 143)
        #expect(ProcessEnd.signaled(9).description == "killed by SIGKILL")
    }

    @Test func socketPathRule() {
        #expect(SocketPath.problem("/tmp/a.sock") == nil)
        #expect(SocketPath.problem(String(repeating: "a", count: 107)) == nil)
        #expect(SocketPath.problem(String(repeating: "a", count: 108)) != nil)
        #expect(SocketPath.problem("") != nil)
        #expect(SocketPath.problem("a\u{0}b") != nil)
    }

    @Test func jsonEscapesEveryControlCharacter() {
        #expect(jsonQuoted("a\"b\\c\nd\te\r\u{1}") == "\"a\\\"b\\\\c\\nd\\te\\r\\u0001\"")
        #expect(jsonQuoted("é✓") == "\"é✓\"")
    }

    @Test func notifyMessages() {
        let m = NotifyMessage(Array("STATUS=x=y\nREADY=1\ngarbage\n".utf8))
        #expect(m.saysReady)
        #expect(m.value("STATUS") == "x=y")
        #expect(!NotifyMessage(Array("READY=0".utf8)).saysReady)
        #expect(!NotifyMessage(Array("XREADY=1".utf8)).saysReady)
    }

    @Test func nonUTF8ArgumentsAreFound() {
        #expect(firstNonUTF8Argument([Array("ok".utf8), [0x2f, 0xff, 0x61]]) == 1)
        #expect(firstNonUTF8Argument([Array("é".utf8)]) == nil)
    }
}

@Suite struct DurationGrammarTests {
    @Test func exactAndBounded() {
        #expect(parseDuration("0.000000001") == 1)
        #expect(parseDuration("1.5ms") == 1_500_000)
        #expect(parseDuration("1000000000") == 1_000_000_000 * nanosecondsPerSecond)
        #expect(parseDurationChecked("99999999999999999999") == .failure(.tooLarge))
        #expect(parseDurationChecked("-1") == .failure(.negative))
        #expect(parseDurationChecked("1.5x") == .failure(.notADuration))
        #expect(parseDurationChecked(".") == .failure(.notADuration))
        #expect(parseDuration(".5") == 500_000_000)
        #expect(formatDuration(1_950_000_000) == "2s")
        #expect(formatDuration(UInt64.max) != "")
    }
}
