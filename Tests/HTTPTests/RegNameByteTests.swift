@testable import HTTP
import Testing

/// The Host check's byte table says what RFC 3986 §2.2-2.3 say for every byte value: reg-name bytes are
/// unreserved (ALPHA DIGIT - . _ ~) or sub-delims (! $ & ' ( ) * + , ; =), and nothing else.
@Test func regNameByteTableMatchesRFC3986() {
    let allowed = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=".utf8))
    for b in 0...255 {
        #expect(isRegNameByte(UInt8(b)) == allowed.contains(UInt8(b)), "byte \(b)")
    }
}
