/// An address `--listen` binds: a Unix socket path or a TCP host and port.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    case unix(path: String)
    /// `host` is an IPv4 or IPv6 literal (brackets removed); "" means every address.
    case tcp(host: String, port: UInt16)

    public var description: String {
        switch self {
        case .unix(let p): return p
        case .tcp(let h, let port): return h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
        }
    }

    /// `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (every address), or a Unix socket path (anything with a `/`,
    /// or no `:PORT` at its end). Nil with a reason when it is neither.
    public static func parse(_ text: String) -> Result<ListenAddress, UsageError> {
        if text.isEmpty { return .failure(UsageError("needs an address: HOST:PORT, [IPv6]:PORT, :PORT or a socket path")) }
        if text.hasPrefix("/") || text.hasPrefix(".") {
            if let problem = SocketPath.problem(text) { return .failure(UsageError(problem)) }
            return .success(.unix(path: text))
        }
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(UsageError("'\(text)' is not [IPv6]:PORT"))
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .failure(UsageError("'\(host)' is not an IPv6 address"))
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return .failure(UsageError("'\(text)': write an IPv6 address in brackets, [::1]:8000")) }
            if !host.isEmpty, !isIPv4(host) {
                return .failure(UsageError("'\(host)' is not an IPv4 address (names are not resolved: give 127.0.0.1, 0.0.0.0 or [::1])"))
            }
        } else {
            if let problem = SocketPath.problem(text) { return .failure(UsageError(problem)) }
            return .success(.unix(path: text))
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), portText.count <= 5,
              let port = UInt16(portText), port > 0 else {
            return .failure(UsageError("'\(portText)' is not a port (1-65535)"))
        }
        return .success(.tcp(host: String(host), port: port))
    }

    static func isIPv4(_ s: Substring) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.allSatisfy { $0.isASCII && $0.isNumber } && Int(p)! <= 255
        }
    }
}

/// One `--listen [NAME=]ADDRESS`.
public struct Listen: Equatable, Sendable {
    /// Its LISTEN_FDNAMES entry.
    public var name: String
    public var address: ListenAddress

    public init(name: String, address: ListenAddress) {
        self.name = name
        self.address = address
    }

    /// `NAME=ADDRESS` or `ADDRESS`; a name is letters, digits, `_`, `-` and `.` (what LISTEN_FDNAMES allows).
    public static func parse(_ text: String, defaultName: String) -> Result<Listen, UsageError> {
        var name = defaultName
        var rest = Substring(text)
        if let eq = text.firstIndex(of: "="), !text[..<eq].contains("/"), !text.hasPrefix(".") {
            let n = text[..<eq]
            guard !n.isEmpty, n.count <= 255, n.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
                return .failure(UsageError("'\(n)' is not a listener name (letters, digits, _ - .)"))
            }
            name = String(n)
            rest = text[text.index(after: eq)...]
        }
        return ListenAddress.parse(String(rest)).map { Listen(name: name, address: $0) }
    }
}
