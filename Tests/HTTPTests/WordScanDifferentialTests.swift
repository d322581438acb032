@testable import HTTP
import Testing
import TestSupport

/// The head scan's eight-byte steps must decide exactly what the byte-by-byte scan decides: the scan of
/// before the word steps is kept here as the reference, and both are run on random heads (control bytes,
/// DEL and high bytes at every offset, request lines around their limit), whole and resumed after cuts.
@Suite struct WordScanDifferentialTests {
    static func referenceScan(_ p: UnsafeBufferPointer<UInt8>, from: Int, limit: Int, lineLimit: Int) -> String {
        let cr: UInt8 = 13, lf: UInt8 = 10, ht: UInt8 = 9, del: UInt8 = 0x7F
        let n = p.count
        let end = min(n, max(0, limit))
        var i = from
        var requestLineEnded = from > lineLimit
        if !requestLineEnded { for k in 0..<min(from, n) where p[k] == lf { requestLineEnded = true; break } }
        while i < end {
            let b = p[i]
            if !requestLineEnded && i >= lineLimit && b != cr && b != lf { return "failed(requestLineTooLong)" }
            if b == lf { requestLineEnded = true }
            if b >= 0x20 {
                if b == del { return "failed(controlCharacter)" }
            } else if b == cr {
                if i + 1 >= n { return "needMore(\(i))" }
                if p[i + 1] != lf { return "failed(bareCR)" }
            } else if b == lf {
                if i == 0 || p[i - 1] != cr { return "failed(bareLF)" }
                if i >= 3 && p[i - 2] == lf { return "found(\(i + 1))" }
            } else if b != ht {
                return "failed(controlCharacter)"
            }
            i += 1
        }
        if n > limit { return "failed(headTooLarge)" }
        return "needMore(\(i))"
    }

    static func describe(_ s: HTTPRequestParser.Scan) -> String {
        switch s {
        case .found(let i): "found(\(i))"
        case .needMore(let i): "needMore(\(i))"
        case .failed(let e): "failed(\(e.kind))"
        }
    }

    @Test func wordStepsDecideAsByteSteps() {
        var rng = SplitMix64(seed: 0x5EED19)
        let alphabet: [UInt8] = Array("GET /a HTTP/1.1:xyz-".utf8) + [13, 10, 9, 0, 0x1F, 0x20, 0x7F, 0x80, 0xFF, 0x7E, 0xA0]
        var compared = 0
        for round in 0..<20000 {
            let length = Int.random(in: 1..<80, using: &rng)
            var bytes: [UInt8] = (0..<length).map { _ in
                Int.random(in: 0..<4, using: &rng) == 0 ? alphabet.randomElement(using: &rng)! : UInt8(ascii: "a")
            }
            // Often a well-formed skeleton so the scan gets far.
            if Bool.random(using: &rng) {
                let line = Array("GET /\(String(repeating: "p", count: Int.random(in: 0..<30, using: &rng))) HTTP/1.1\r\n".utf8)
                bytes = line + bytes + Array("\r\n\r\n".utf8)
            }
            if bytes[0] == 13 || bytes[0] == 10 { bytes[0] = UInt8(ascii: "G") }
            let limit = Int.random(in: 0...(bytes.count + 10), using: &rng)
            let lineLimit = Int.random(in: 0...(bytes.count + 10), using: &rng)
            // Resume from every prefix the reference scan would have said needMore at.
            for cut in [bytes.count] + (0..<3).map({ _ in Int.random(in: 1...bytes.count, using: &rng) }) {
                var from = 0
                let pieces = [Array(bytes[..<cut]), bytes]
                for piece in pieces {
                    let (want, got) = piece.withUnsafeBufferPointer { p in
                        (Self.referenceScan(p, from: from, limit: limit, lineLimit: lineLimit),
                         Self.describe(HTTPRequestParser.scanHead(p, from: from, limit: limit, lineLimit: lineLimit)))
                    }
                    compared += 1
                    if want != got {
                        Issue.record("round \(round): \(piece) from \(from) limit \(limit) lineLimit \(lineLimit): want \(want), got \(got)")
                        return
                    }
                    guard want.hasPrefix("needMore("), let r = Int(want.dropFirst(9).dropLast()) else { break }
                    from = r
                }
            }
        }
        #expect(compared > 50_000)
    }
}
