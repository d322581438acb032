/// Percent-decoding (RFC 3986 2.1) of a request target's path: the one decoder for PATH_INFO, the
/// access log and static files.
public enum PercentDecoding {
    /// `%XY` becomes the byte 0xXY. A `%` not followed by two hex digits stays as it is (lenient: the
    /// environ's PATH_INFO and the log, as uWSGI decodes), or makes the result nil (`strict`: a static
    /// file's path, where a malformed escape is a bad request).
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, strict: Bool = false) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "%") else {
                out.append(bytes[i])
                i += 1
                continue
            }
            let h = i + 1 < bytes.count ? hexValue(bytes[i + 1]) : -1
            let l = i + 2 < bytes.count ? hexValue(bytes[i + 2]) : -1
            if h >= 0, l >= 0 {
                out.append(UInt8(h << 4 | l))
                i += 3
            } else if strict {
                return nil
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// `decode` of a string's UTF-8 bytes.
    public static func decode(_ s: String, strict: Bool = false) -> [UInt8]? {
        var s = s
        return s.withUTF8 { decode($0, strict: strict) }
    }
}
