import Glibc
import Posix
import SWSGIConfig

/// uWSGI's `logto` and `daemonize`: the master opens the log file once (O_APPEND, so every process's
/// one-write(2) lines stay whole) and makes it fd 1 and 2, which workers, mules and Python inherit.
/// `daemonize` also detaches: the process that was started exits 0 at once and a new session carries on.
enum LogTarget {
    /// Carries out `--logto` / `--daemonize` before anything else is opened; throws with the call named.
    static func apply(_ options: ServerOptions) throws {
        guard let path = options.daemonize ?? options.logTo else { return }
        let fd = try openLog(path, options)
        defer { close(fd) }
        if options.daemonize != nil {
            let devNull = try syscall("open", "/dev/null") { open("/dev/null", O_RDONLY | O_CLOEXEC) }
            defer { close(devNull) }
            // Still one thread, nothing bound: the fork copies only this process's config.
            let pid = try syscall("fork") { fork() }
            if pid > 0 { _exit(0) }
            _ = try syscall("setsid") { setsid() }
            _ = try syscall("dup2", "stdin") { dup2(devNull, 0) }
        }
        _ = try syscall("dup2", path) { dup2(fd, 1) }
        _ = try syscall("dup2", path) { dup2(fd, 2) }
    }

    /// The log file (O_APPEND; O_TRUNC with `--log-truncate`), or, for `HOST:PORT` (uWSGI's logto form
    /// for UDP), a UDP socket connected there: every line is then one datagram.
    static func openLog(_ path: String, _ options: ServerOptions, reopening: Bool = false) throws -> Int32 {
        if !path.contains("/"), let colon = path.lastIndex(of: ":"), let port = Int(path[path.index(after: colon)...]),
           (1...65535).contains(port), colon != path.startIndex {
            let address = try SocketAddressBytes(String(path[..<colon]), port: port)
            let fd = try syscall("socket", path) { socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            _ = try syscall("connect", path) { address.withPointer { connect(fd, $0, $1) } }
            return fd
        }
        let fd = try openLogFile(path, truncate: options.logging.truncate && !reopening)
        if let mode = options.logFileMode { _ = try syscall("fchmod", path) { fchmod(fd, mode_t(mode)) } }
        return fd
    }

    /// `--log-reopen`: the file at the path again (logrotate moved the old one), as fd 1 and 2.
    static func reopen(_ options: ServerOptions) throws {
        guard let path = options.daemonize ?? options.logTo else { return }
        let fd = try openLog(path, options, reopening: true)
        defer { close(fd) }
        _ = try syscall("dup2", path) { dup2(fd, 1) }
        _ = try syscall("dup2", path) { dup2(fd, 2) }
    }
}
