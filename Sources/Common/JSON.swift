/// `s` as a JSON string literal, quotes included (RFC 8259 §7: every control character escaped).
public func jsonQuoted(_ s: String) -> String { "\"" + jsonEscaped(s) + "\"" }

/// The inside of a JSON string literal: quotes, backslashes and every control character escaped.
public func jsonEscaped(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if c.value < 0x20 {
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    return out
}
