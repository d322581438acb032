import HTTP
import Testing

/// Random inputs must never crash, never report more consumed bytes than given, always end
/// in need-more / requests / an error, and give the same outcome however they are split.
@Suite struct FuzzTests {
    static let seeds: [String] = pipelined + [
        "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nContent-Length: 2\r\n\r\nhi",
        "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nA: b\r\n\r\n",
    ]

    static let interesting: [UInt8] = Array("\r\n :;,\t0aF-?/\u{0}\u{7F}".utf8) + [0x80, 0xFF]

    /// Random cut points, so the same bytes are also fed in pieces.
    static func randomCuts(_ count: Int, _ rng: inout SplitMix64) -> [Int] {
        guard count > 1 else { return [] }
        return (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 1..<count, using: &rng) }.sorted()
    }

    static func check(_ input: [UInt8], _ rng: inout SplitMix64, limits: HTTPLimits) {
        let whole = drive(input, limits: limits)
        let split = drive(input, splitAt: randomCuts(input.count, &rng), limits: limits)
        #expect(!whole.contractViolation && !split.contractViolation, "\(input)")
        #expect(whole.outcome == split.outcome, "\(input)")
    }

    @Test func randomBytes() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let limits = HTTPLimits(maxHeadBytes: 256, maxBodyBytes: 512)
        for _ in 0..<3000 {
            let length = Int.random(in: 0..<400, using: &rng)
            let useInteresting = Bool.random(using: &rng)
            let input: [UInt8] = (0..<length).map { _ in
                useInteresting
                    ? Self.interesting.randomElement(using: &rng)!
                    : UInt8.random(in: 0...255, using: &rng)
            }
            Self.check(input, &rng, limits: limits)
        }
    }

    @Test func mutatedValidRequests() {
        var rng = SplitMix64(seed: 42)
        let limits = HTTPLimits(maxHeadBytes: 256, maxBodyBytes: 512)
        var outcomes = [0, 0, 0]  // requests only, error, mid-request
        for _ in 0..<6000 {
            var input = bytes(Self.seeds.randomElement(using: &rng)!)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                guard !input.isEmpty else { break }
                let at = Int.random(in: 0..<input.count, using: &rng)
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: input[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: input[at] = Self.interesting.randomElement(using: &rng)!
                case 2: input.insert(Self.interesting.randomElement(using: &rng)!, at: at)
                case 3: input.remove(at: at)
                case 4:
                    let end = min(input.count, at + Int.random(in: 1...20, using: &rng))
                    input.insert(contentsOf: input[at..<end], at: at)
                default: input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...10, using: &rng)))
                }
            }
            Self.check(input, &rng, limits: limits)
            let o = drive(input, limits: limits).outcome
            outcomes[o.error != nil ? 1 : (o.midRequest ? 2 : 0)] += 1
        }
        // The mutations exercise all three endings.
        #expect(outcomes.allSatisfy { $0 > 0 }, "\(outcomes)")
    }

    @Test func randomChunkedBodies() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            var input = bytes("5\r\nhello\r\n1a;ext\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX: y\r\n\r\n")
            let at = Int.random(in: 0..<input.count, using: &rng)
            input[at] = Self.interesting.randomElement(using: &rng)!
            var d = HTTPBodyDecoder(framing: .chunked, limits: HTTPLimits(maxHeadBytes: 64, maxBodyBytes: 100))
            var out: [UInt8] = []
            var verdict = HTTPBodyResult.needMore
            for b in input where verdict == .needMore { verdict = d.decode([b], into: &out) }
            let (whole, wholeOut) = decodeBody(.chunked, input, limits: HTTPLimits(maxHeadBytes: 64, maxBodyBytes: 100))
            switch (verdict, whole) {
            case (.done(1), .done): #expect(out == wholeOut)
            case (.needMore, .needMore), (.error, .error): #expect(verdict == whole)
            default: Issue.record("split-dependent: \(verdict) vs \(whole) for \(input)")
            }
        }
    }
}
