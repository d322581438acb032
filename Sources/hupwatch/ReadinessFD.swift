import CGlibcShim
import Glibc
import Posix

/// s6's readiness notification: one newline on a file descriptor once the first generation serves.
extension Runner {

    /// `--notify-fd N`, or the s6 service directory's `notification-fd` file when hupwatch runs in one
    /// and that fd is open. It is kept from the children (CLOEXEC).
    static func readinessFD(_ given: Int32?) throws -> Int32? {
        var n = given
        if n == nil, let text = try? readTextFile("notification-fd", maxBytes: 64),
           let v = Int32(text.filter { !$0.isWhitespace }), v >= 3 {
            n = v
        }
        guard let fd = n else { return nil }
        guard fcntl(fd, F_GETFD) >= 0 else {
            if given != nil { throw SetupError(message: "--notify-fd \(fd): not an open file descriptor") }
            return nil
        }
        _ = shim_fcntl_int(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// The first time a generation serves: one newline on the s6 notification fd, which is then closed.
    func announceReadiness(_ n: Int) {
        guard let fd = readinessFD else { return }
        readinessFD = nil
        let written = "\n".withCString { Glibc.write(fd, $0, 1) }
        if written != 1 { log("--notify-fd \(fd): write: \(errnoText(errno))") }
        close(fd)
    }
}
