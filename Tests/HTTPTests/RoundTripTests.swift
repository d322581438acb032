import Testing
import HTTP

/// Property: a request the parser accepts, written back out (`wireBytes`), parses to the same request.
/// Inputs are generated (valid shapes) and then mutated byte by byte (mostly invalid ones); only the
/// accepted ones are checked, thousands per run, reproducible from the seed.
@Suite struct RoundTrip {
    static let methods = ["GET", "POST", "OPTIONS", "CONNECT", "M-SEARCH", "-X", "PUT"]
    static let targets = ["/", "///a", "/p?q=1&r", "*", "http://h/x?y", "h:443", "/%41%2f", "/a?", "?"]
    static let names = ["Host", "X-A", "content-length", "Transfer-Encoding", "Connection", "Expect", "X_U", "a!#$%&'*+.^`|~"]
    static let values = ["h", "example.com:8080", "5", "chunked", "close", "keep-alive", "100-continue", " spaced ", "", "\u{7f}x", "caf\u{e9}"]

    @Test func acceptedRequestsSurviveBeingWrittenBackOut() {
        var rng = SplitMix64(seed: 0x5eed_10)
        var accepted = 0
        for _ in 0..<20_000 {
            var text = "\(Self.methods.randomElement(using: &rng)!) \(Self.targets.randomElement(using: &rng)!) HTTP/1.\(Int.random(in: 0...2, using: &rng))\r\n"
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                text += "\(Self.names.randomElement(using: &rng)!):\(Bool.random(using: &rng) ? " " : "")\(Self.values.randomElement(using: &rng)!)\r\n"
            }
            text += "\r\n"
            var raw = Array(text.utf8)
            for _ in 0..<Int.random(in: 0...2, using: &rng) where !raw.isEmpty {
                raw[Int.random(in: 0..<raw.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            var limits = HTTPLimits()
            limits.underscoreFields = [.drop, .refuse, .keep].randomElement(using: &rng)!
            var parser = HTTPRequestParser(limits: limits)
            guard case .head(let head, _) = parser.parse(raw) else { continue }
            accepted += 1
            var again = HTTPRequestParser(limits: limits)
            let result = again.parse(head.wireBytes)
            #expect(result == .head(head, consumed: head.wireBytes.count), "\(String(decoding: raw, as: UTF8.self).debugDescription)")
        }
        #expect(accepted > 800, "enough accepted requests to mean something: \(accepted)")
    }
}
