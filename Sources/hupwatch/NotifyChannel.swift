import Glibc
import Posix

/// hupwatch's private folder for the generations' NOTIFY_SOCKETs and its control socket: mode 0700, so no
/// other user can reach a socket in it (socket paths are listed in /proc/net/unix for all to read). A server
/// that drops privileges before it says READY=1 cannot reach it either: give it `--ready socket:`/`http:`.
final class NotifyFolder {
    let path: String

    /// Made under `base` (TMPDIR) when it is absolute and short enough for socket paths, else /tmp.
    init(base: String?) throws {
        let base = base.flatMap { $0.hasPrefix("/") && $0.utf8.count < 48 ? $0 : nil } ?? "/tmp"
        var template = Array((base + "/hupwatch.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SyscallError("mkdtemp", context: base)
        }
        path = String(cString: made)
    }

    /// Puts the folder back if something (a tmp cleaner, an operator) removed it. True when it was missing.
    func ensureExists() throws -> Bool {
        if isDirectory(path) { return false }
        try syscall("mkdir", path) { mkdir(path, 0o700) }
        return true
    }

    /// Removes the folder (its sockets must be gone first).
    func remove() { rmdir(path) }

    /// A fresh, unguessable socket path in the folder.
    func newSocketPath(generation: Int) -> String {
        let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        return path + "/g\(generation)-\(token)"
    }
}

/// One generation's NOTIFY_SOCKET. Every datagram carries the sender's kernel-checked pid; only the
/// generation's own processes (its process group, whose id is its pid) may declare it ready.
final class NotifyChannel {
    let path: String
    let fd: Int32

    init(folder: NotifyFolder, generation: Int) throws {
        let path = folder.newSocketPath(generation: generation)
        let socket = try UnixSocket.datagram(boundTo: path)
        try UnixSocket.passCredentials(socket.raw)
        self.path = path
        fd = socket.release()
    }

    deinit {
        close(fd)
        unlink(path)
    }

    enum Message {
        case fromGeneration(NotifyMessage)
        case foreign(sender: pid_t)
        /// The sender exited before hupwatch could check whose it was: not believed.
        case senderGone(pid_t)
    }

    /// The datagrams waiting now, each judged by its sender.
    func read(generationPID: pid_t) -> [Message] {
        var out: [Message] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while let got = try? UnixSocket.receive(from: fd, into: &buf) {
            let sender = got.sender
            let group = sender > 0 ? getpgid(sender) : -1
            if sender > 0, sender == generationPID || group == generationPID {
                out.append(.fromGeneration(NotifyMessage(buf[..<got.count])))
            } else if sender > 0, group < 0, errno == ESRCH {
                out.append(.senderGone(sender))
            } else {
                out.append(.foreign(sender: sender))
            }
        }
        return out
    }
}
