import Glibc
import Posix
import ReloadCore

/// Watches one generation's readiness: its private NOTIFY_SOCKET and, where the mode asks, probes of
/// the Unix socket. A probe repeats every `probeInterval` only while a generation is starting.
final class ReadinessWatcher {
    static let probeInterval: UInt64 = 10_000_000
    static let warmup: UInt64 = nanosecondsPerSecond

    let generation: Int
    let mode: ReadinessMode
    /// Abstract-namespace address, one per generation, so a READY=1 cannot be mistaken for another's.
    let notifyAddress: String
    let notifyFD: Int32
    /// The inode the path had before this generation started: a rebinding server must show a new one.
    let previousInode: ino_t?
    /// An O_PATH fd on that socket file: while it is open the inode number cannot be freed and handed to
    /// the new bind (ext4 reuses it at once when a stale file nobody holds is unlinked), which would hide
    /// a new listener behind the old number.
    let previousHold: Int32
    let probePath: String?
    /// Some earlier generation sent READY=1, so this one is expected to as well.
    let expectNotify: Bool
    var startedAt: Instant = 0
    var spoke = false
    var readySent = false
    var nextProbeAt: Instant? = nil

    init(generation: Int, mode: ReadinessMode, probePath: String?, expectNotify: Bool) throws {
        self.generation = generation
        self.mode = mode
        self.probePath = probePath
        self.expectNotify = expectNotify
        self.notifyAddress = "@hupwatch/\(getpid())/\(generation)/\(monotonicNanoseconds() % 1_000_000)"
        let fd = try UnixSocket.datagram(boundTo: notifyAddress)
        let hold = probePath.map { open($0, __O_PATH | O_NOFOLLOW | O_CLOEXEC) } ?? -1
        var st = stat()
        previousInode = hold >= 0 && fstat(hold, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK ? st.st_ino : nil
        previousHold = hold
        notifyFD = fd.release()
    }

    deinit {
        close(notifyFD)
        if previousHold >= 0 { close(previousHold) }
    }

    func activate(now: Instant) {
        startedAt = now
        nextProbeAt = usesProbe ? now : nil
    }

    private var usesProbe: Bool {
        switch mode {
        case .socket, .http: return true
        case .auto: return !expectNotify && !spoke && probePath != nil
        case .notify, .delay: return false
        }
    }

    /// The next instant this watcher needs the loop to wake, if any.
    var nextWake: Instant? {
        switch mode {
        case .delay(let d): return startedAt + d
        case .auto where !expectNotify && !spoke && probePath == nil: return startedAt + Self.warmup
        default: return nextProbeAt
        }
    }

    /// Reads queued sd_notify datagrams. Returns the lines for verbose logging.
    func readNotifications() -> [String] {
        var lines: [String] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(notifyFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 { return lines }
            spoke = true
            let text = String(decoding: buf[..<n], as: UTF8.self)
            for line in text.split(separator: "\n") {
                if line == "READY=1" { readySent = true }
                lines.append(String(line))
            }
            if !usesProbe { nextProbeAt = nil }
        }
    }

    /// Decides readiness at `now`, running a probe when one is due.
    func isReady(now: Instant) -> Bool {
        if readySent { return true }
        switch mode {
        case .notify: return false
        case .delay(let d): return now >= startedAt + d
        case .auto where expectNotify || spoke: return false
        case .auto where probePath == nil: return now >= startedAt + Self.warmup
        default: break
        }
        guard let due = nextProbeAt, due <= now, let path = probePath else { return false }
        // Quick probes while a start is expected; a generation still silent after 5 s (the first one
        // is kept running past its ready timeout) is looked at 5 times a second, not 100.
        nextProbeAt = now + (now - startedAt < 5 * nanosecondsPerSecond ? Self.probeInterval : 200_000_000)
        if case .http(let urlPath) = mode { return newListenerAccepts(path) && httpAnswers2xx(path, urlPath) }
        return newListenerAccepts(path)
    }

    private func newListenerAccepts(_ path: String) -> Bool {
        guard let ino = UnixSocket.inode(atPath: path), ino != previousInode else { return false }
        return UnixSocket.isAccepting(path)
    }

    /// One GET over the socket, with a 1 s limit on each step so a stuck server cannot stall hupwatch.
    private func httpAnswers2xx(_ path: String, _ urlPath: String) -> Bool {
        guard let fd = try? UnixSocket.connect(path: path) else { return false }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd.raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard (try? fd.write("GET \(urlPath) HTTP/1.0\r\nHost: localhost\r\nUser-Agent: hupwatch\r\n\r\n")) != nil else { return false }
        var buf = [UInt8](repeating: 0, count: 64)
        var got = 0
        while got < 12 {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress! + got, 64 - got) }
            if n <= 0 { break }
            got += n
        }
        // "HTTP/1.x 2xx"
        return got >= 12 && buf[0..<5].elementsEqual("HTTP/".utf8) && buf[9] == UInt8(ascii: "2")
    }
}
