import Glibc
import Posix

/// uWSGI's master FIFO (`--master-fifo PATH`, core/fifo.c): each byte written to it is a command for the
/// master, `echo r > PATH` reloads. The letters swsgi has a meaning for; the others are logged and ignored.
enum MasterFifoCommand: Equatable {
    /// `r` (uWSGI: graceful reload), `w` (reload the workers), `c` (chain reload): swsgi's graceful reload of
    /// the workers, as SIGHUP (new workers first, then the old ones finish what they hold).
    case reload(Character)
    /// `q`: graceful stop, as SIGTERM.
    case gracefulStop
    /// `Q`: immediate stop, as SIGINT.
    case immediateStop
    /// `+` / `-`: one worker more or less, as SIGTTIN / SIGTTOU (uWSGI's cheaper increase/decrease).
    case addWorker, removeWorker
    /// `l`: reopen the log file (--logto/--daemonize).
    case reopenLog
    /// `s`: the stats (as --stats answers them) written to the log.
    case logStats
    /// `P`: write the pid file again.
    case rewritePidFile
    /// Whitespace (`echo r` adds a newline): nothing.
    case nothing
    /// A letter uWSGI knows but swsgi has no such action for, or an unknown one: logged with the reason.
    case unsupported(String)

    static func decode(_ byte: UInt8) -> MasterFifoCommand {
        let c = Character(Unicode.Scalar(byte))
        switch c {
        case "r", "w", "c": return .reload(c)
        case "q": return .gracefulStop
        case "Q": return .immediateStop
        case "+": return .addWorker
        case "-": return .removeWorker
        case "l": return .reopenLog
        case "s": return .logStats
        case "P": return .rewritePidFile
        case " ", "\n", "\r", "\t": return .nothing
        case "R", "W": return .unsupported("'\(c)' (brutal reload) is not supported: swsgi reloads gracefully only; use 'r'")
        case "L": return .unsupported("'L' (log rotation) is not supported: rotate with logrotate, then 'l' reopens the file")
        case "0"..."9": return .unsupported("'\(c)' (FIFO slots) is not supported: swsgi has one master FIFO")
        case "f", "p", "C", "B", "E", "S":
            return .unsupported("'\(c)' is a uWSGI command swsgi does not have (master refork, suspend, go cheap, emperor, subscriptions)")
        default:
            let shown = byte >= 0x21 && byte < 0x7f ? "'\(c)'" : "byte \(byte)"
            return .unsupported("\(shown) is not a master FIFO command (r w c q Q + - l s P)")
        }
    }
}

/// The FIFO itself: created fresh at start (a stale FIFO from an earlier run is replaced; anything else at the
/// path is refused), read without blocking, removed at exit while it is still ours. The master holds a write
/// end too, so a writer closing never turns the read end into an endless end-of-file.
final class MasterFifo {
    let path: String
    let fd: Int32
    private let keepOpen: Int32
    private let inode: ino_t
    /// The FIFO replaced had a reader (an older generation, or another server given the same path): said once
    /// by the master, since that process gets no more commands.
    private(set) var replacedLiveFifo = false

    init(path: String) throws {
        switch try pathKind(path) {
        case .missing: break
        case .other:
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else {
                throw SWSGIError("--master-fifo \(path): something that is not a FIFO is there: refusing to replace it")
            }
            // A non-blocking open for writing succeeds only while some process has the FIFO open for reading.
            let probe = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if probe >= 0 {
                replacedLiveFifo = true
                close(probe)
            }
            try syscall("unlink", path) { unlink(path) }
        default:
            throw SWSGIError("--master-fifo \(path): something that is not a FIFO is there: refusing to replace it")
        }
        try syscall("mkfifo", path) { mkfifo(path, 0o600) }
        let r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard r >= 0 else { throw SyscallError("open", context: path) }
        let w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard w >= 0 else {
            close(r)
            throw SyscallError("open", context: path)
        }
        var st = stat()
        fstat(r, &st)
        (self.path, fd, keepOpen, inode) = (path, r, w, st.st_ino)
    }

    /// At most this much is read per wake-up: a writer that never stops cannot hold the master in this loop
    /// (the rest stays readable and wakes the loop again, after the other events).
    static let readLimit = 64 << 10

    /// The commands waiting, as `coalesce` makes them of the bytes.
    func commands() -> [MasterFifoCommand] {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while bytes.count < Self.readLimit {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return Self.coalesce(bytes)
    }

    /// Bytes read at once are one instant, as signals pending together are one: each command once, in the
    /// order first written (a thousand `r` are one reload, an unknown byte repeated is one log line),
    /// except `+` and `-`, which count (three `+` are three more workers, as in uWSGI).
    static func coalesce(_ bytes: [UInt8]) -> [MasterFifoCommand] {
        var out: [MasterFifoCommand] = []
        var seen = [Bool](repeating: false, count: 256)
        for byte in bytes {
            let counts = byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            guard counts || !seen[Int(byte)] else { continue }
            seen[Int(byte)] = true
            let command = MasterFifoCommand.decode(byte)
            if command != .nothing { out.append(command) }
        }
        return out
    }

    /// In a forked child: the master's ends go.
    func closeAfterFork() {
        close(fd)
        close(keepOpen)
    }

    /// Removes the path while it is still this FIFO (a newer instance may have made its own since).
    func remove() {
        var st = stat()
        if lstat(path, &st) == 0, st.st_ino == inode, (st.st_mode & S_IFMT) == S_IFIFO { unlink(path) }
    }
}
