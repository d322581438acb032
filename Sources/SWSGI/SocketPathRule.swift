import Glibc
import Posix

/// What may be at a socket path swsgi is asked to bind: nothing, or a socket nobody accepts on.
/// A regular file, directory, symlink or device is an operator's mistake, never data to delete; a live
/// listener is another server's path, never one to take over (except our own hupwatch handover).
enum SocketPathRule {
    /// True when the path holds a stale socket the caller may replace; false when the path is free.
    /// Throws, naming the option, for everything else.
    static func check(_ path: String, option: String, successor: Bool) throws -> Bool {
        switch try pathKind(path) {
        case .missing:
            return false
        case .socket:
            if UnixSocket.hasLiveListener(path) && !successor {
                throw SWSGIError("\(option) \(path): address in use: a live server already serves this path (it accepts connections); stop it, or reload it (SIGHUP, or hupwatch for a new version)")
            }
            return true
        case .regularFile: throw SWSGIError("\(option) \(path): a regular file is there, not a socket: refusing to replace it")
        case .directory: throw SWSGIError("\(option) \(path): a directory is there, not a socket: refusing to replace it")
        case .symlink: throw SWSGIError("\(option) \(path): a symlink is there, not a socket: refusing to replace it")
        case .other: throw SWSGIError("\(option) \(path): something that is not a socket is there: refusing to replace it")
        }
    }

    /// hupwatch (rebind mode) starts the next generation while the previous one still serves the path,
    /// and numbers each generation in HUPWATCH_GENERATION: generation 2 and later take the path over by
    /// design. The first generation has no predecessor, so a live listener there is someone else's.
    static func isHupwatchSuccessor(_ env: [String]) -> Bool {
        (lookup("HUPWATCH_GENERATION", in: env).flatMap { Int($0) } ?? 0) >= 2
    }
}
