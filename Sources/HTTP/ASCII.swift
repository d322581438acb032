// Byte-level helpers shared by the parser, body decoder and writer. Everything here
// works on UInt8 so the hot loops never touch String or Character.

let cr: UInt8 = 0x0D
let lf: UInt8 = 0x0A
let sp: UInt8 = 0x20
let ht: UInt8 = 0x09
let colon: UInt8 = 0x3A
let comma: UInt8 = 0x2C
let semicolon: UInt8 = 0x3B
let questionMark: UInt8 = 0x3F
let hash: UInt8 = 0x23
let del: UInt8 = 0x7F

/// RFC 9110 `tchar`: the bytes allowed in methods, field names and codings.
@inline(__always)
func isTChar(_ b: UInt8) -> Bool {
    switch b {
    case 0x61...0x7A, 0x41...0x5A, 0x30...0x39:  // a-z A-Z 0-9
        return true
    // ! # $ % & ' * + - . ^ _ ` | ~
    case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:
        return true
    default:
        return false
    }
}

/// RFC 9110 §5.1: a field name is a token (one or more tchar): the rule request names are parsed by, and the
/// one every name an app sends is held to (`(`, `"`, `/`, `@`, `,` and the like would make a head that a
/// client or proxy reads another way, or refuses).
public func isToken(_ bytes: some Collection<UInt8>) -> Bool {
    !bytes.isEmpty && bytes.allSatisfy(isTChar)
}

/// A field name as `isToken` judges it; the text's UTF-8 (a name past ASCII is no token).
public func isFieldName(_ name: String) -> Bool { isToken(name.utf8) }

@inline(__always)
func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

@inline(__always)
func isOWS(_ b: UInt8) -> Bool { b == sp || b == ht }

/// Control characters other than HTAB (and DEL) are never valid inside a head line.
@inline(__always)
func isForbiddenControl(_ b: UInt8) -> Bool { (b < 0x20 && b != ht) || b == del }

/// Value of a hex digit, or -1.
@inline(__always)
func hexValue(_ b: UInt8) -> Int {
    switch b {
    case 0x30...0x39: return Int(b &- 0x30)
    case 0x61...0x66: return Int(b &- 0x61 &+ 10)
    case 0x41...0x46: return Int(b &- 0x41 &+ 10)
    default: return -1
    }
}

@inline(__always)
func lowerASCII(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }

/// Whether `p[start..<end]` equals the lowercase ASCII literal `lower`, ignoring ASCII case.
@inline(__always)
func equalsLowercased(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ lower: StaticString) -> Bool {
    let count = lower.utf8CodeUnitCount
    guard end - start == count else { return false }
    let l = lower.utf8Start
    var k = 0
    while k < count {
        if lowerASCII(p[start + k]) != l[k] { return false }
        k += 1
    }
    return true
}

/// Whether two strings have the same representation (one small string's bytes, or one storage and its count):
/// then they hold the same bytes, known without a retain or a copy. (Strings with the same bytes may still differ
/// here: this is only a fast path before looking at the bytes.)
@inline(__always)
public func sameRepresentation(_ a: String, _ b: String) -> Bool {
    unsafeBitCast(a, to: (UInt64, UInt64).self) == unsafeBitCast(b, to: (UInt64, UInt64).self)
}

/// ASCII case-insensitive comparison of two strings (field names are ASCII tokens, so
/// full Unicode case folding would be both slower and wrong).
public func equalsIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
    if sameRepresentation(a, b) { return true }
    guard a.utf8.count == b.utf8.count else { return false }
    var a = a, b = b
    return a.withUTF8 { ua in
        b.withUTF8 { ub in
            guard ua.count == ub.count else { return false }
            for k in 0..<ua.count where lowerASCII(ua[k]) != lowerASCII(ub[k]) { return false }
            return true
        }
    }
}

/// Calls `body(start, end)` for each element of a comma-separated list in `p[start..<end]`,
/// with optional whitespace trimmed. Empty elements are passed too (callers decide).
/// Stops early and returns false when `body` returns false.
@inline(__always)
func forEachListElement(
    _ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
    _ body: (Int, Int) -> Bool
) -> Bool {
    var i = start
    while true {
        while i < end, isOWS(p[i]) { i += 1 }
        let elementStart = i
        var elementEnd = i
        while i < end, p[i] != comma {
            i += 1
            if !isOWS(p[i - 1]) { elementEnd = i }
        }
        if !body(elementStart, elementEnd) { return false }
        if i >= end { return true }
        i += 1  // skip the comma
    }
}

@inline(__always)
func makeString(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
    String(decoding: UnsafeBufferPointer(rebasing: p[start..<end]), as: UTF8.self)
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendStatic(_ s: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Appends `value` in decimal without creating a String. The digits are written backwards into a
    /// buffer on the stack and appended in one copy (this runs twice per response).
    mutating func appendDecimal(_ value: Int) {
        if value < 0 { append(0x2D) }
        appendDigits(UInt(value.magnitude), radix: 10)
    }

    /// Appends `value` (non-negative) in lowercase hex, as chunk sizes are written.
    mutating func appendHex(_ value: Int) {
        appendDigits(UInt(bitPattern: value), radix: 16)
    }

    @inline(__always)
    private mutating func appendDigits(_ value: UInt, radix: UInt) {
        // 24 bytes: room for UInt.max in decimal.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buf in
            var m = value
            var j = buf.count
            repeat {
                j -= 1
                let d = UInt8(truncatingIfNeeded: m % radix)
                buf[j] = d < 10 ? d &+ 0x30 : d &+ 0x57
                m /= radix
            } while m > 0
            append(contentsOf: UnsafeBufferPointer(rebasing: buf[j...]))
        }
    }
}

/// `p[start..<end]` as text for a log line: visible ASCII as it is, every other byte (control, SP, DEL, not
/// ASCII) as `\xHH`, so a client's bytes can neither break the line nor make it invalid UTF-8.
func printableText(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
    var text = ""
    text.reserveCapacity(end - start)
    for k in start..<end {
        let b = p[k]
        if b > 0x20 && b < 0x7F {
            text.unicodeScalars.append(Unicode.Scalar(b))
        } else {
            text += "\\x"
            text.unicodeScalars.append(Unicode.Scalar(hexDigitUpper(b >> 4)))
            text.unicodeScalars.append(Unicode.Scalar(hexDigitUpper(b & 0xF)))
        }
    }
    return text
}

@inline(__always)
private func hexDigitUpper(_ v: UInt8) -> UInt8 { v < 10 ? v &+ 0x30 : v &+ 0x37 }

/// ALPHA (RFC 5234).
func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 }

/// `p[start..<end]` equals `text` byte for byte (methods are case-sensitive, RFC 9110 §9.1).
func equalsExact(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
    let count = text.utf8CodeUnitCount
    guard end - start == count, end <= p.count else { return false }
    let t = text.utf8Start
    for k in 0..<count where p[start + k] != t[k] { return false }
    return true
}

/// RFC 3986 §3.2: `uri-host [ ":" port ]` (authority without userinfo), as Host carries it (RFC 9110
/// §7.2) and CONNECT's authority-form (RFC 9112 §3.2.3, where the port is required). uri-host is an
/// IP-literal in brackets (hex digits, ":" and "."), or a reg-name / IPv4address: unreserved,
/// sub-delims and pct-encoded bytes. An empty Host is allowed (a request without authority).
func isValidAuthority(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, requirePort: Bool) -> Bool {
    if start >= end { return !requirePort }
    var i = start
    if p[i] == 0x5B {  // "["
        i += 1
        let literalStart = i
        while i < end, p[i] != 0x5D {
            let b = p[i]
            guard hexValue(b) >= 0 || b == colon || b == 0x2E else { return false }
            i += 1
        }
        guard i < end, i > literalStart else { return false }
        i += 1  // "]"
    } else {
        let hostStart = i
        while i < end, p[i] != colon {
            let b = p[i]
            if b == 0x25 {  // pct-encoded
                guard i + 2 < end, hexValue(p[i + 1]) >= 0, hexValue(p[i + 2]) >= 0 else { return false }
                i += 3
                continue
            }
            guard isRegNameByte(b) else { return false }
            i += 1
        }
        guard i > hostStart else { return false }
    }
    if i == end { return !requirePort }
    guard p[i] == colon else { return false }
    i += 1
    if requirePort && i == end { return false }
    while i < end {
        guard isDigit(p[i]) else { return false }
        i += 1
    }
    return true
}

/// unreserved / sub-delims (RFC 3986 §2.2, §2.3).
/// ALPHA, DIGIT and `- . _ ~ ! $ & ' ( ) * + , ; =`, as one bit per byte value below 128 (a Host is checked on
/// every request: one shift and mask per byte instead of a chain of comparisons).
@inline(__always)
func isRegNameByte(_ b: UInt8) -> Bool {
    let below64: UInt64 = 0x2bff7fd200000000, from64: UInt64 = 0x47fffffe87fffffe
    guard b < 128 else { return false }
    return ((b < 64 ? below64 : from64) >> UInt64(b & 63)) & 1 == 1
}
