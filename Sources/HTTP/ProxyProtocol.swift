/// The PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and 2) a load balancer sends first
/// on each connection: who the real client is. Pure: bytes in, a decision out.
///
/// When a listener expects it, the header is required: the specification forbids guessing ("the receiver
/// MUST NOT try to guess whether the protocol header is present"), since a guessing server lets any client
/// that reaches it name its own address. (uWSGI guesses; swsgi closes such a connection.)
public enum ProxyProtocol {
    /// The real client as the header names it; nil for `PROXY UNKNOWN` and v2 `LOCAL` (a health check from the
    /// proxy itself: the connection's own peer stands).
    public typealias Source = (host: String, port: Int)?

    public enum Outcome: Equatable {
        /// Not enough bytes yet to tell.
        case needMore
        /// Not a valid header: the connection is closed unanswered; the reason is for the log.
        case invalid(String)
        /// A header of `consumed` bytes naming `host`/`port` (nil host: UNKNOWN or LOCAL).
        case parsed(host: String?, port: Int?, consumed: Int)
    }

    /// v1's longest line, CRLF included (proxy-protocol.txt 2.1).
    public static let v1MaxBytes = 107
    /// The v2 header and address block swsgi accepts (TLVs included): AWS and GCP send well under this.
    public static let v2MaxBytes = 16 + 2048
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    /// The header at the start of `bytes` (everything the connection sent so far).
    public static func parse(_ bytes: ArraySlice<UInt8>) -> Outcome {
        let b = Array(bytes.prefix(v2MaxBytes + 1))
        // Either signature may still be arriving: compare what is there.
        let v2Match = zip(b, v2Signature).allSatisfy { $0 == $1 }
        if v2Match {
            return b.count < v2Signature.count ? .needMore : parseV2(b)
        }
        if zip(b, v1Prefix).allSatisfy({ $0 == $1 }) {
            return b.count < v1Prefix.count ? .needMore : parseV1(b)
        }
        return .invalid("no PROXY protocol header (the connection did not start with PROXY or the v2 signature)")
    }

    private static func parseV1(_ b: [UInt8]) -> Outcome {
        if let lf = b.firstIndex(of: 0x0A), lf < (b.firstIndex(of: 0x0D) ?? b.count) {
            return .invalid("PROXY v1 line not ended by CRLF")
        }
        guard let cr = b.firstIndex(of: 0x0D) else {
            return b.count >= v1MaxBytes ? .invalid("PROXY v1 line longer than \(v1MaxBytes) bytes") : .needMore
        }
        guard cr + 1 < b.count else { return .needMore }
        guard b[cr + 1] == 0x0A, cr + 2 <= v1MaxBytes else { return .invalid("PROXY v1 line not ended by CRLF within \(v1MaxBytes) bytes") }
        let words = b[v1Prefix.count..<cr].split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if words.first == "UNKNOWN" { return .parsed(host: nil, port: nil, consumed: cr + 2) }
        guard words.count == 5, words[0] == "TCP4" || words[0] == "TCP6" else {
            return .invalid("PROXY v1 line is not 'PROXY TCP4|TCP6 SRC DST SPORT DPORT' or 'PROXY UNKNOWN'")
        }
        let v6 = words[0] == "TCP6"
        guard validAddress(words[1], v6: v6), validAddress(words[2], v6: v6),
              let sport = port(words[3]), port(words[4]) != nil else {
            return .invalid("PROXY v1 line has a malformed address or port")
        }
        return .parsed(host: words[1], port: sport, consumed: cr + 2)
    }

    private static func parseV2(_ b: [UInt8]) -> Outcome {
        guard b.count >= 16 else { return .needMore }
        let version = b[12] >> 4, command = b[12] & 0x0F
        guard version == 2 else { return .invalid("PROXY v2 header with version \(version)") }
        guard command <= 1 else { return .invalid("PROXY v2 header with command \(command) (only LOCAL and PROXY exist)") }
        let length = Int(b[14]) << 8 | Int(b[15])
        guard 16 + length <= v2MaxBytes else { return .invalid("PROXY v2 header of \(16 + length) bytes (at most \(v2MaxBytes))") }
        guard b.count >= 16 + length else { return .needMore }
        let consumed = 16 + length
        // LOCAL: the proxy's own connection (a health check): the socket's peer stands.
        if command == 0 { return .parsed(host: nil, port: nil, consumed: consumed) }
        let a = b[16..<consumed]
        switch b[13] {
        case 0x11, 0x12:  // TCP or UDP over IPv4: src(4) dst(4) sport(2) dport(2)
            guard length >= 12 else { return .invalid("PROXY v2 IPv4 address block too short") }
            let s = a.startIndex
            let host = a[s..<s + 4].map(String.init).joined(separator: ".")
            return .parsed(host: host, port: Int(a[s + 8]) << 8 | Int(a[s + 9]), consumed: consumed)
        case 0x21, 0x22:  // IPv6: src(16) dst(16) sport(2) dport(2)
            guard length >= 36 else { return .invalid("PROXY v2 IPv6 address block too short") }
            let s = a.startIndex
            let groups = stride(from: 0, to: 16, by: 2).map { String(Int(a[s + $0]) << 8 | Int(a[s + $0 + 1]), radix: 16) }
            return .parsed(host: groups.joined(separator: ":"), port: Int(a[s + 32]) << 8 | Int(a[s + 33]), consumed: consumed)
        default:  // UNSPEC or AF_UNIX: no client address to report (the specification: use the real one).
            return .parsed(host: nil, port: nil, consumed: consumed)
        }
    }

    private static func port(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(s), p <= 65535,
              s == "0" || !s.hasPrefix("0") else { return nil }
        return p
    }

    private static func validAddress(_ s: String, v6: Bool) -> Bool {
        if v6 { return !s.isEmpty && s.count <= 39 && s.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && s.contains(":") }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in !p.isEmpty && p.count <= 3 && p.allSatisfy { $0.isASCII && $0.isNumber } && Int(p)! <= 255 }
    }
}
