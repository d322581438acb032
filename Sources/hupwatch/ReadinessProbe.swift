import Glibc
import Posix

/// One generation's readiness probe of a Unix socket path, never blocking the loop.
///
/// "Accepting" is proven, not guessed: the server must have accepted the probe's own connection (sock_diag
/// shows our peer's inode once accept(2) gave it a socket), however busy its queue is with other clients.
/// A listener whose backlog is full (EAGAIN), that refuses, or that still holds our connection in its queue
/// is not ready. For `http:` the connection then sends a GET and the answer must start with a 2xx status line.
final class ReadinessProbe {
    enum Outcome: Equatable { case accepting, notAccepting, waiting }

    let path: String
    let httpPath: String?
    /// The inode the path had before this generation started: a rebinding server must show a new one.
    let previousInode: ino_t?
    /// An O_PATH fd on that socket file: while it is open the inode number cannot be freed and handed to
    /// the new bind (ext4 reuses it at once), which would hide a new listener behind the old number.
    private let previousHold: Int32
    /// Our connection, kept across probe rounds until the server accepts it.
    private(set) var connection: Int32 = -1
    private var connectedInode: ino_t?
    private var answer: [UInt8] = []

    init(path: String, httpPath: String?) {
        self.path = path
        self.httpPath = httpPath
        let hold = open(path, __O_PATH | O_NOFOLLOW | O_CLOEXEC)
        var st = stat()
        previousInode = hold >= 0 && fstat(hold, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK ? st.st_ino : nil
        previousHold = hold
    }

    deinit {
        cancel()
        if previousHold >= 0 { close(previousHold) }
    }

    /// Drops the connection of a round still in flight.
    func cancel() {
        if connection >= 0 { close(connection) }
        connection = -1
        connectedInode = nil
        answer = []
    }

    /// One round. `.waiting` (http: only) means the fd in `connection` must be watched for readability.
    func start() -> Outcome {
        guard let ino = UnixSocket.inode(atPath: path), ino != previousInode else {
            cancel()
            return .notAccepting
        }
        if connection >= 0, connectedInode != ino { cancel() }
        if connection < 0 {
            // Non-blocking: a full backlog answers EAGAIN at once instead of stalling hupwatch.
            guard let fd = try? UnixSocket.connect(path: path, nonBlocking: true) else { return .notAccepting }
            connection = fd.release()
            connectedInode = ino
            if let httpPath {
                let request = "GET \(httpPath) HTTP/1.0\r\nHost: localhost\r\nUser-Agent: hupwatch\r\n\r\n"
                let sent = Array(request.utf8).withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if sent != request.utf8.count {
                    cancel()
                    return .notAccepting
                }
            }
        }
        if httpPath != nil { return readAnswer() }
        guard let accepted = try? UnixSocket.isAccepted(connection) else {
            cancel()
            return .notAccepting
        }
        if accepted {
            // Closed at once: the server's worker is not held by an idle probe connection.
            cancel()
            return .accepting
        }
        return .notAccepting
    }

    /// Reads what the server answered so far (after a readable event, or right after sending).
    func readAnswer() -> Outcome {
        guard connection >= 0 else { return .notAccepting }
        var buf = [UInt8](repeating: 0, count: 64)
        while answer.count < 12 {
            let n = buf.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                answer += buf[..<n]
                continue
            }
            if n < 0, errno == EAGAIN || errno == EINTR { return .waiting }
            break // EOF or error
        }
        // "HTTP/1.x 2xx"
        let ok = answer.count >= 12 && answer[0..<5].elementsEqual("HTTP/".utf8) && answer[9] == UInt8(ascii: "2")
        cancel()
        return ok ? .accepting : .notAccepting
    }
}
