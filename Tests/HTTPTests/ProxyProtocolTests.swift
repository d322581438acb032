import Testing
import HTTP

/// haproxy's proxy-protocol.txt: v1 lines and v2 binary headers, every byte split, and what is refused.
@Suite struct ProxyProtocolHeader {
    func bytes(_ s: String) -> ArraySlice<UInt8> { Array(s.utf8)[...] }

    @Test func v1TCP4AndTCP6AndUnknown() {
        #expect(ProxyProtocol.parse(bytes("PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n"))
            == .parsed(host: "192.0.2.7", port: 56324, consumed: 41))
        #expect(ProxyProtocol.parse(bytes("PROXY TCP6 2001:db8::7 ::1 40000 80\r\n")) == .parsed(host: "2001:db8::7", port: 40000, consumed: 37))
        #expect(ProxyProtocol.parse(bytes("PROXY UNKNOWN\r\nGET")) == .parsed(host: nil, port: nil, consumed: 15))
    }

    @Test func everyPrefixOfAValidHeaderNeedsMore() {
        let v1 = Array("PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".utf8)
        let v2: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C,
                           198, 51, 100, 9, 10, 0, 0, 1, 0x1F, 0x90, 0x00, 0x50]
        for header in [v1, v2] {
            for n in 0..<header.count { #expect(ProxyProtocol.parse(header[..<n]) == .needMore, "\(n) bytes") }
        }
        #expect(ProxyProtocol.parse(v2[...] + Array("GET".utf8)) == .parsed(host: "198.51.100.9", port: 8080, consumed: 28))
    }

    @Test func v2LocalAndIPv6() {
        let sig: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        #expect(ProxyProtocol.parse((sig + [0x20, 0x00, 0x00, 0x00])[...]) == .parsed(host: nil, port: nil, consumed: 16))
        var v6 = sig + [0x21, 0x21, 0x00, 36] + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        v6 += [UInt8](repeating: 0, count: 16) + [0x9C, 0x40, 0x00, 0x50]
        #expect(ProxyProtocol.parse(v6[...]) == .parsed(host: "2001:db8:0:0:0:0:0:1", port: 40000, consumed: 52))
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 " + String(repeating: "1", count: 120),
    ])
    func malformedHeadersAreRefused(_ text: String) {
        guard case .invalid = ProxyProtocol.parse(bytes(text)) else {
            Issue.record("accepted: \(text.debugDescription)")
            return
        }
    }
}
