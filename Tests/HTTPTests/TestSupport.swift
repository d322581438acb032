import HTTP
@_exported import TestSupport

/// UTF-8 bytes of a string literal; tests spell CRLF explicitly.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// One fully received request.
struct Received: Equatable {
    var head: HTTPRequestHead
    var body: [UInt8]
}

/// A miniature server read loop: the way swsgi is expected to drive the parser and body
/// decoder, with pipelining. Also checks the API contract (consumed never exceeds input).
struct Driver {
    var limits: HTTPLimits
    var parser: HTTPRequestParser
    var decoder: HTTPBodyDecoder?
    var current: HTTPRequestHead?
    var body: [UInt8] = []
    var received: [Received] = []
    var error: HTTPError?
    var contractViolation = false

    init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        parser = HTTPRequestParser(limits: limits)
    }

    /// Outcome comparable across different splits of the same input.
    struct Outcome: Equatable {
        var received: [Received]
        var error: HTTPError?
        var midRequest: Bool
    }

    var outcome: Outcome {
        Outcome(received: received, error: error, midRequest: decoder != nil || parser.hasPartialHead)
    }

    mutating func feed(_ chunk: [UInt8]) {
        var rest = chunk[...]
        while error == nil {
            if var d = decoder {
                let r = d.decode(rest, into: &body)
                decoder = d
                switch r {
                case .needMore:
                    return
                case .done(let consumed):
                    if consumed > rest.count || consumed < 0 { contractViolation = true; return }
                    received.append(Received(head: current!, body: body))
                    decoder = nil
                    current = nil
                    rest = rest.dropFirst(consumed)
                case .error(let e):
                    error = e
                    return
                }
            } else {
                if rest.isEmpty { return }
                switch parser.parse(rest) {
                case .needMore:
                    return
                case .head(let head, let consumed):
                    if consumed > rest.count || consumed <= 0 { contractViolation = true; return }
                    rest = rest.dropFirst(consumed)
                    current = head
                    body = []
                    decoder = HTTPBodyDecoder(framing: head.framing, limits: limits)
                case .error(let e):
                    error = e
                    return
                }
            }
        }
    }

    /// Feeds `input` cut at the given ascending positions.
    mutating func feed(_ input: [UInt8], splitAt cuts: [Int]) {
        var last = 0
        for c in cuts where c > last && c < input.count {
            feed(Array(input[last..<c]))
            last = c
        }
        feed(Array(input[last...]))
    }
}

func drive(_ input: [UInt8], splitAt cuts: [Int] = [], limits: HTTPLimits = HTTPLimits()) -> Driver {
    var d = Driver(limits: limits)
    d.feed(input, splitAt: cuts)
    return d
}

/// Parses a head from a single buffer.
func parseHead(_ s: String, limits: HTTPLimits = HTTPLimits()) -> HTTPParseResult {
    var p = HTTPRequestParser(limits: limits)
    return p.parse(bytes(s))
}

/// The head, or nil when parsing did not produce one.
func head(_ s: String, limits: HTTPLimits = HTTPLimits()) -> HTTPRequestHead? {
    if case .head(let h, _) = parseHead(s, limits: limits) { return h }
    return nil
}

/// The error, or nil when parsing did not fail.
func headError(_ s: String, limits: HTTPLimits = HTTPLimits()) -> HTTPError? {
    if case .error(let e) = parseHead(s, limits: limits) { return e }
    return nil
}

/// Decodes a whole body in one call.
func decodeBody(_ framing: HTTPBodyFraming, _ input: [UInt8], limits: HTTPLimits = HTTPLimits())
    -> (HTTPBodyResult, [UInt8])
{
    var d = HTTPBodyDecoder(framing: framing, limits: limits)
    var out: [UInt8] = []
    let r = d.decode(input, into: &out)
    return (r, out)
}
