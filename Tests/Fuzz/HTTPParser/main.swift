// libFuzzer target for the request parser and body decoder (compiled together with Sources/HTTP by
// Tests/Fuzz/run). Each input: one control byte (limits, underscore policy, how to split), then the bytes a
// client sends. Checked on every input, besides "no crash, hang or sanitizer report":
// - the outcome does not depend on how the bytes are split across reads;
// - every accepted head, written back out (`wireBytes`), parses to an equal head.

/// One connection's worth of parsing, as a worker drives it (pipelining included).
struct Outcome: Equatable {
    var heads: [HTTPRequestHead] = []
    var bodies: [[UInt8]] = []
    var error: HTTPError? = nil
}

func run(_ input: [UInt8], limits: HTTPLimits, pieceSize: Int) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var decoder: HTTPBodyDecoder? = nil
    var body: [UInt8] = []
    var out = Outcome()
    var offset = 0
    while offset < input.count && out.error == nil {
        let end = min(input.count, offset + pieceSize)
        var rest = input[offset..<end]
        offset = end
        while out.error == nil {
            if var d = decoder {
                let r = d.decode(rest, into: &body)
                decoder = d
                switch r {
                case .needMore: rest = []
                case .done(let consumed):
                    precondition(consumed >= 0 && consumed <= rest.count, "decoder consumed \(consumed) of \(rest.count)")
                    out.bodies.append(body)
                    body = []
                    decoder = nil
                    rest = rest.dropFirst(consumed)
                case .error(let e): out.error = e
                }
                if decoder != nil { break }
            } else {
                if rest.isEmpty { break }
                switch parser.parse(rest) {
                case .needMore: rest = []
                case .head(let head, let consumed):
                    precondition(consumed > 0 && consumed <= rest.count, "parser consumed \(consumed) of \(rest.count)")
                    rest = rest.dropFirst(consumed)
                    out.heads.append(head)
                    decoder = HTTPBodyDecoder(framing: head.framing, limits: limits)
                case .error(let e): out.error = e
                }
            }
        }
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 1 else { return 0 }
    let control = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var limits = HTTPLimits(maxHeadBytes: [96, 512, 8192][Int(control % 3)],
                            maxBodyBytes: control & 4 != 0 ? 64 : nil)
    limits.underscoreFields = [.drop, .refuse, .keep][Int((control >> 3) % 3)]
    limits.maxRequestLineBytes = control & 32 != 0 ? 40 : 4094
    limits.maxFields = control & 64 != 0 ? 3 : 100
    limits.maxChunkExtensionBytes = control & 128 != 0 ? 16 : 16384
    let whole = run(input, limits: limits, pieceSize: Int.max)
    let pieceSize = Int(control >> 5) + 1
    let split = run(input, limits: limits, pieceSize: pieceSize)
    precondition(whole == split, "the outcome depends on the split (pieces of \(pieceSize))")
    // Written back out, bytes that were not UTF-8 (legal obs-text) become U+FFFD's three bytes, so the
    // same request may be longer: the size limits are widened for the re-parse, and the field count.
    var wide = limits
    wide.maxHeadBytes = 1 << 20
    wide.maxRequestLineBytes = 1 << 20
    wide.maxFieldBytes = 1 << 20
    // An absolute-form target's authority comes back as a Host field (RFC 9112 §3.2.2): one field more.
    wide.maxFields = limits.maxFields + 1
    for head in whole.heads {
        var again = HTTPRequestParser(limits: wide)
        guard case .head(let reparsed, let consumed) = again.parse(head.wireBytes) else {
            preconditionFailure("an accepted head, written back out, is refused: \(head)")
        }
        precondition(reparsed == head, "round trip changed the head: \(head) -> \(reparsed)")
        precondition(consumed == head.wireBytes.count)
    }
    return 0
}
