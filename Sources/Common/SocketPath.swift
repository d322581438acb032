/// The rules a Unix socket path must meet before anything binds or connects to it.
public enum SocketPath {
    /// sun_path holds 108 bytes, one of them the terminating NUL.
    public static let maxBytes = 107

    /// Nil when `path` can be a socket address; else one line saying why not.
    public static func problem(_ path: String) -> String? {
        if path.isEmpty { return "the socket path is empty" }
        if path.utf8.contains(0) { return "the socket path contains a NUL byte" }
        if path.utf8.count > maxBytes {
            return "the socket path is \(path.utf8.count) bytes, longer than the \(maxBytes) bytes sun_path allows: \(path)"
        }
        return nil
    }
}
