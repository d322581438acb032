/// Result of feeding bytes to `HTTPBodyDecoder`.
public enum HTTPBodyResult: Sendable, Hashable {
    /// The body is incomplete; all given bytes were consumed.
    case needMore
    /// The body (and trailer section) is complete. `consumed` bytes of this call's input
    /// belonged to it; any rest is the next pipelined request.
    case done(consumed: Int)
    /// The body is invalid: answer `status` and close. The decoder stays failed.
    case error(HTTPError)
}

/// Incremental request-body decoder for one request, driven by `HTTPRequestHead.framing`.
///
/// Decoded body bytes are appended to a caller-provided array (one bulk copy per run of
/// data; framing bytes are examined one at a time by a small state machine, so nothing
/// is buffered internally and any split of the input gives the same result).
/// Chunk extensions are skipped (only control bytes are rejected, and each chunk-size
/// line is bounded by `maxHeadBytes`); trailer fields are validated like header
/// fields, counted against `maxHeadBytes` (431), and discarded.
public struct HTTPBodyDecoder: Sendable {
    private enum State: Sendable {
        case length
        case chunkSize, chunkSizeWhitespace, chunkExtension, chunkSizeLF
        case chunkData, chunkDataCR, chunkDataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, trailerEndLF
        case done
    }

    private var state: State
    private var failure: HTTPError?
    /// Content-Length bytes left, chunk size being read, or chunk bytes left.
    private var remaining = 0
    private var sizeDigits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var extensionBytes = 0
    /// The trailer field name being read, lowercased; names longer than any forbidden one are not kept.
    private var trailerName: [UInt8] = []
    private var trailerNameTooLong = false
    private let maxBody: Int
    private let maxHead: Int
    private let maxExtensions: Int

    /// Decoded body bytes produced so far.
    public private(set) var bodyBytes = 0

    /// Creates a decoder for a body framed as `framing`. A Content-Length above
    /// `limits.maxBodyBytes` fails on the first `decode` (the parser already rejects it).
    public init(framing: HTTPBodyFraming, limits: HTTPLimits = HTTPLimits()) {
        maxBody = limits.maxBodyBytes ?? Int.max
        maxHead = limits.maxHeadBytes
        maxExtensions = limits.maxChunkExtensionBytes
        switch framing {
        case .none:
            state = .done
        case .contentLength(let n):
            state = n == 0 ? .done : .length
            remaining = n
            if n < 0 { failure = HTTPError(.invalidContentLength) }
            if n > maxBody { failure = HTTPError(.bodyTooLarge) }
        case .chunked:
            state = .chunkSize
        }
    }

    /// Fields that must not arrive as trailers (RFC 9110 §6.5.1): message framing, routing, request
    /// modifiers, authentication, and how to process the content.
    static let forbiddenTrailers: Set<[UInt8]> = Set([
        "content-length", "transfer-encoding", "host", "connection", "keep-alive", "te", "trailer", "upgrade",
        "expect", "content-type", "content-encoding", "content-range", "authorization", "proxy-authorization",
        "cookie", "cache-control", "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range",
    ].map { Array($0.utf8) })
    static let longestForbiddenTrailer = forbiddenTrailers.map(\.count).max()!

    /// Whether the whole body has been decoded.
    public var isDone: Bool { failure == nil && state == .done }

    /// Decodes from `input`, appending body bytes to `body`.
    public mutating func decode(_ input: UnsafeRawBufferPointer, into body: inout [UInt8]) -> HTTPBodyResult {
        decodeBytes(input.assumingMemoryBound(to: UInt8.self), into: &body)
    }

    /// Decodes from `input`, appending body bytes to `body`.
    public mutating func decode(_ input: [UInt8], into body: inout [UInt8]) -> HTTPBodyResult {
        input.withUnsafeBufferPointer { decodeBytes($0, into: &body) }
    }

    /// Decodes from `input`, appending body bytes to `body`.
    public mutating func decode(_ input: ArraySlice<UInt8>, into body: inout [UInt8]) -> HTTPBodyResult {
        input.withUnsafeBufferPointer { decodeBytes($0, into: &body) }
    }

    private mutating func decodeBytes(_ p: UnsafeBufferPointer<UInt8>, into body: inout [UInt8]) -> HTTPBodyResult {
        if let failure { return .error(failure) }
        let n = p.count
        var i = 0

        @inline(__always) func fail(_ kind: HTTPError.Kind) -> HTTPBodyResult {
            failure = HTTPError(kind)
            return .error(HTTPError(kind))
        }

        while true {
            switch state {
            case .done:
                return .done(consumed: i)

            case .length, .chunkData:
                let k = min(remaining, n - i)
                if k > 0 {
                    body.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<(i + k)]))
                    i += k
                    remaining -= k
                    bodyBytes += k
                }
                guard remaining == 0 else { return .needMore }
                state = state == .length ? .done : .chunkDataCR
                continue

            default:
                break
            }

            // Framing bytes, one at a time.
            guard i < n else { return .needMore }
            let b = p[i]
            i += 1
            switch state {
            case .chunkSize:
                let h = hexValue(b)
                if h >= 0 {
                    guard remaining <= Int.max >> 4 else { return fail(.invalidChunk) }  // overflow
                    remaining = remaining << 4 | h
                    sizeDigits += 1
                    lineBytes += 1
                    if lineBytes > maxHead { return fail(.invalidChunk) }
                    continue
                }
                guard sizeDigits > 0 else { return fail(.invalidChunk) }
                // Decide 413 from the announced size, before any of its data arrives.
                if remaining > maxBody - bodyBytes { return fail(.bodyTooLarge) }
                if b == cr {
                    state = .chunkSizeLF
                } else if b == semicolon {
                    state = .chunkExtension
                } else if isOWS(b) {
                    state = .chunkSizeWhitespace
                } else {
                    return fail(.invalidChunk)
                }
            case .chunkSizeWhitespace:
                // RFC 9112 §7.1.1: BWS may only precede a chunk extension's ";": "5 \r\n" is refused
                // (parsers disagree on it, which is what request smuggling feeds on).
                if b == semicolon {
                    state = .chunkExtension
                } else if isOWS(b) {
                    lineBytes += 1
                    if lineBytes > maxHead { return fail(.invalidChunk) }
                } else {
                    return fail(.invalidChunk)
                }
            case .chunkExtension:
                if b == cr {
                    state = .chunkSizeLF
                } else if isForbiddenControl(b) {
                    return fail(.invalidChunk)
                } else {
                    lineBytes += 1
                    if lineBytes > maxHead { return fail(.invalidChunk) }
                    extensionBytes += 1
                    if extensionBytes > maxExtensions { return fail(.chunkExtensionsTooLarge) }
                }
            case .chunkSizeLF:
                guard b == lf else { return fail(.invalidChunk) }
                sizeDigits = 0
                lineBytes = 0
                state = remaining == 0 ? .trailerLineStart : .chunkData
            case .chunkDataCR:
                guard b == cr else { return fail(.invalidChunk) }
                state = .chunkDataLF
            case .chunkDataLF:
                guard b == lf else { return fail(.invalidChunk) }
                state = .chunkSize

            // Trailer section: field lines until an empty line, validated then dropped.
            case .trailerLineStart, .trailerName, .trailerValue, .trailerLF, .trailerEndLF:
                trailerBytes += 1
                if trailerBytes > maxHead { return fail(.headTooLarge) }
                switch state {
                case .trailerLineStart:
                    if b == cr {
                        state = .trailerEndLF
                    } else if isTChar(b) {
                        state = .trailerName
                        trailerName.removeAll(keepingCapacity: true)
                        trailerNameTooLong = false
                        trailerName.append(lowerASCII(b))
                    } else {
                        return fail(isOWS(b) ? .obsFold : .invalidFieldName)
                    }
                case .trailerName:
                    if b == colon {
                        // RFC 9110 §6.5.1: framing, routing and content-processing fields are never trailers.
                        if !trailerNameTooLong, Self.forbiddenTrailers.contains(trailerName) { return fail(.forbiddenTrailerField) }
                        state = .trailerValue
                    } else if !isTChar(b) {
                        return fail(isOWS(b) ? .whitespaceBeforeColon : .invalidFieldName)
                    } else if trailerName.count < Self.longestForbiddenTrailer {
                        trailerName.append(lowerASCII(b))
                    } else {
                        trailerNameTooLong = true
                    }
                case .trailerValue:
                    if b == cr {
                        state = .trailerLF
                    } else if isForbiddenControl(b) {
                        return fail(b == lf ? .bareLF : .invalidFieldValue)
                    }
                case .trailerLF:
                    guard b == lf else { return fail(.bareCR) }
                    state = .trailerLineStart
                default:  // .trailerEndLF
                    guard b == lf else { return fail(.bareCR) }
                    state = .done
                }
            default:
                return fail(.invalidChunk)  // unreachable: data states handled above
            }
        }
    }
}
