import CGlibcShim
import Glibc
import Posix
import SWSGIConfig

/// One place log lines go (a uWSGI logger): opened by the master before it forks, so every process
/// holds the same descriptor; each line is one write(2) (files: O_APPEND, so lines never mix).
final class LogOutput {
    /// `logger = ID ...`: a named logger only gets what a `log-route` sends it.
    let id: String?
    private let target: Target

    enum Target {
        /// fd 2 (stdio: `--logto`'s file or the inherited stderr) or `fd:N`.
        case descriptor(Int32)
        case file(RotatingFile)
        /// syslog / rsyslog: one datagram per line, `<PRI>Mmm dd hh:mm:ss TAG: msg`.
        case datagram(fd: Int32, address: SocketAddressBytes, tag: String, priority: Int32, limit: Int)
    }

    /// The rotating file behind this output, if it is a file.
    var file: RotatingFile? {
        if case .file(let f) = target { return f }
        return nil
    }

    init(id: String?, target: Target) {
        self.id = id
        self.target = target
    }

    /// Writes `line` (no trailing newline needed) as one write(2) / one datagram.
    func write(_ line: String) {
        switch target {
        case .descriptor(let fd):
            LogOutput.writeLine(line, to: fd)
        case .file(let f):
            f.write(line)
        case .datagram(let fd, let address, let tag, let priority, let limit):
            var message = Substring(line)
            while message.hasSuffix("\n") { message = message.dropLast() }
            var bytes = Array("<\(priority)>\(syslogTimestamp()) \(tag): ".utf8)
            bytes += message.utf8.prefix(limit)
            address.withPointer { addr, len in
                bytes.withUnsafeBytes { _ = sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), addr, len) }
            }
        }
    }

    /// One write(2) of `line` plus a newline (when it has none): Posix's, named here for the callers.
    static func writeLine(_ line: String, to fd: Int32) { Posix.writeLine(line, to: fd) }

    static func writeAll(_ bytes: [UInt8], to fd: Int32) { Posix.writeAll(bytes, to: fd) }

    /// Opens what `spec` names; `mainLog` is fd 2's own rotation (for `stdio`), `slot` the shared
    /// memory a rotating file coordinates through.
    static func open(_ spec: LoggerSpec, mainLog: RotatingFile?, chmod: UInt32?, slot: () throws -> UnsafeMutableRawPointer) throws -> LogOutput {
        switch spec.kind {
        case .stdio:
            return LogOutput(id: spec.id, target: mainLog.map { .file($0) } ?? .descriptor(2))
        case .fd(let n):
            return LogOutput(id: spec.id, target: .descriptor(n))
        case .file(let path, let maxSize, let backupName):
            let fd = try RotatingFile.openLog(path, chmod: chmod)
            return LogOutput(id: spec.id, target: .file(RotatingFile(path: path, fd: fd, alsoAt: [], maxSize: maxSize,
                                                                      backupName: backupName, chmod: chmod, shared: try slot())))
        case .syslog(let ident, let facility):
            // What glibc's syslog(3) sends (no LOG_PID, as uWSGI opens it), to the local syslog socket.
            return try datagram(spec.id, address: "/dev/log", port: 0, tag: ident, priority: facility | 6, limit: 8192)
        case .rsyslog(let address, let port, let prefix, let priority):
            return try datagram(spec.id, address: address, port: port, tag: prefix ?? "\(hostName()) uwsgi", priority: priority, limit: 994)
        }
    }

    private static func datagram(_ id: String?, address: String, port: Int, tag: String, priority: Int32, limit: Int) throws -> LogOutput {
        let addr = try SocketAddressBytes(address, port: port)
        let fd = try syscall("socket", "logger \(address)") { socket(addr.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        if addr.family == AF_UNIX {
            // Nobody bound there (no syslog daemon in a container): each line's sendto fails and is dropped
            // without a word, as under uWSGI. Say it once; the logger stays, for a daemon started later.
            let probe = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if probe >= 0 {
                if addr.withPointer({ connect(probe, $0, $1) }) != 0 {
                    writeLine("swsgi: warning: logger \(address): connect: \(errnoText(errno)): its lines are lost until a syslog daemon listens there", to: 2)
                }
                close(probe)
            }
        }
        return LogOutput(id: id, target: .datagram(fd: fd, address: addr, tag: tag, priority: priority, limit: limit))
    }
}

/// A Unix path or an IPv4 host and port, as sockaddr bytes for sendto(2).
struct SocketAddressBytes {
    let family: Int32
    private let storage: [UInt8]

    init(_ address: String, port: Int) throws {
        if address.hasPrefix("/") {
            var un = sockaddr_un()
            un.sun_family = sa_family_t(AF_UNIX)
            let path = Array(address.utf8)
            guard path.count < MemoryLayout.size(ofValue: un.sun_path) else { throw SWSGIError("logger \(address): the socket path is too long") }
            withUnsafeMutableBytes(of: &un.sun_path) { p in for (i, b) in path.enumerated() { p[i] = b } }
            family = AF_UNIX
            storage = withUnsafeBytes(of: &un) { Array($0) }
        } else {
            var hints = addrinfo()
            hints.ai_family = AF_INET
            hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>? = nil
            let rc = getaddrinfo(address, String(port), &hints, &result)
            guard rc == 0, let r = result else {
                throw SWSGIError("logger \(address):\(port): getaddrinfo: \(String(cString: gai_strerror(rc)))")
            }
            defer { freeaddrinfo(result) }
            family = AF_INET
            storage = Array(UnsafeRawBufferPointer(start: r.pointee.ai_addr, count: Int(r.pointee.ai_addrlen)))
        }
    }

    func withPointer<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        storage.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
    }
}

/// `Dec  6 23:07:44`: RFC 3164's timestamp (local time), as uWSGI's rsyslog and glibc's syslog write it.
func syslogTimestamp() -> String {
    var t = time(nil)
    var tmv = tm()
    localtime_r(&t, &tmv)
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, 32, "%b %e %H:%M:%S", &tmv)
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, 255) == 0 else { return "localhost" }
    return String(cString: buf)
}

/// A log file that is rotated when it passes `maxSize` (uWSGI's `log-maxsize` / `file:logfile=...,maxsize=`):
/// renamed to the backup name (default PATH.UNIXTIME) and opened again, empty, at its path.
///
/// Every process holds the file through the descriptor the master opened. The process whose line takes
/// the file past the size rotates it, holding a lock in shared memory (a dead holder's lock is taken
/// over), then bumps a generation there; every other process sees the new generation before its next
/// line and opens the new file at the same descriptor number (and at `alsoAt`: 1 for `--logto`'s file).
final class RotatingFile {
    let path: String
    /// The descriptor lines are written to (kept at this number across reopens).
    let fd: Int32
    let alsoAt: [Int32]
    let maxSize: UInt64
    let backupName: String?
    let chmod: UInt32?
    /// [0..<8] generation (Int64), [8..<12] the rotating process's pid (Int32, 0 = free).
    private let shared: UnsafeMutableRawPointer
    /// The generation this process's descriptor belongs to: an atomic of its own, since request threads
    /// of one worker log at the same time.
    private let known = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
    private var generation: Int64 {
        get { Int64(bitPattern: shim_load_acquire_u64(known)) }
        set { shim_store_release_u64(known, UInt64(bitPattern: newValue)) }
    }

    static let sharedBytes = 16

    init(path: String, fd: Int32, alsoAt: [Int32], maxSize: UInt64, backupName: String?, chmod: UInt32?, shared: UnsafeMutableRawPointer) {
        self.path = path
        self.fd = fd
        self.alsoAt = alsoAt
        self.maxSize = maxSize
        self.backupName = backupName
        self.chmod = chmod
        self.shared = shared
        shim_store_release_u64(known, shim_load_acquire_u64(shared))
    }

    static func openLog(_ path: String, chmod: UInt32?, truncate: Bool = false) throws -> Int32 {
        let fd = try openLogFile(path, truncate: truncate)
        if let chmod { _ = try? syscall("fchmod", path) { fchmod(fd, mode_t(chmod)) } }
        return fd
    }

    func write(_ line: String) {
        if Int64(bitPattern: shim_load_acquire_u64(shared)) != generation { reopen() }
        LogOutput.writeLine(line, to: fd)
        guard maxSize > 0 else { return }
        let size = lseek(fd, 0, SEEK_CUR)
        if size > 0, UInt64(size) > maxSize { rotate(size: UInt64(size)) }
    }

    /// Another process rotated: the file at the path is the new one.
    private func reopen() {
        generation = Int64(bitPattern: shim_load_acquire_u64(shared))
        guard let new = try? Self.openLog(path, chmod: chmod) else { return }
        moveInto(new)
    }

    private func moveInto(_ new: Int32) {
        // dup2 leaves fds 1 and 2 inheritable (meant to be: exec'd hooks log there); `fd` above 2 gets O_CLOEXEC back.
        _ = dup2(new, fd)
        for other in alsoAt { _ = dup2(new, other) }
        if new != fd { close(new) }
        if fd > 2 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }

    /// rename(2) that fails with EEXIST rather than replace `to`; plain rename where the file system
    /// has no RENAME_NOREPLACE.
    private static func renameKeeping(_ from: String, _ to: String) -> Bool {
        if shim_rename_noreplace(from, to) == 0 { return true }
        guard errno == EINVAL || errno == ENOSYS else { return false }
        if access(to, F_OK) == 0 { errno = EEXIST; return false }
        return rename(from, to) == 0
    }

    private func rotate(size: UInt64) {
        let me = getpid()
        let lock = shared + 8
        if !shim_cas_i32(lock, 0, me).asBool {
            // Held by a process that died mid-rotation (harakiri's SIGKILL): take it over.
            let holder = shim_load_i32(lock)
            guard holder != 0, kill(holder, 0) != 0, errno == ESRCH, shim_cas_i32(lock, holder, me).asBool else { return }
        }
        defer { shim_store_i32(lock, 0) }
        // Someone rotated between our write and the lock: our line went to the backup; follow them.
        guard Int64(bitPattern: shim_load_acquire_u64(shared)) == generation else { reopen(); return }
        // log-backupname is one backup, replaced each time (uWSGI's meaning). The default PATH.SECONDS
        // must not replace an earlier backup of the same second (its lines would be lost): .1, .2, ...
        var backup = backupName ?? "\(path).\(time(nil))"
        var renamed: Bool
        if backupName != nil {
            renamed = rename(path, backup) == 0
        } else {
            let base = backup
            renamed = Self.renameKeeping(path, backup)
            var n = 1
            while !renamed, errno == EEXIST, n < 10_000 {
                backup = "\(base).\(n)"
                renamed = Self.renameKeeping(path, backup)
                n += 1
            }
        }
        let e = errno
        // Into the old file, now at the backup's name (or still at the path when the rename failed).
        LogOutput.writeLine("\(ctimeNow()) - logsize: \(size), triggering rotation to \(backup)...", to: fd)
        guard renamed else {
            LogOutput.writeLine("\(ctimeNow()) - unable to rotate log: rename(\(path), \(backup)): \(errnoText(e))", to: fd)
            return
        }
        // No O_TRUNC: another process that saw an earlier rotation may already have created the new file
        // at the path between our rename and this open, and written a line to it.
        guard let new = try? Self.openLog(path, chmod: chmod) else {
            LogOutput.writeLine("\(ctimeNow()) - unable to rotate log: open(\(path)): \(errnoText(errno))", to: fd)
            return
        }
        moveInto(new)
        generation += 1
        shim_store_release_u64(shared, UInt64(bitPattern: generation))
    }
}

private extension Int32 {
    var asBool: Bool { self != 0 }
}

/// `Sun Dec  6 23:07:44 2026`: ctime(3) without its newline, local time (uWSGI's log date).
func ctimeNow() -> String {
    var t = time(nil)
    var buf = [CChar](repeating: 0, count: 32)
    guard ctime_r(&t, &buf) != nil else { return "" }
    return String(String(cString: buf).prefix(24))
}

/// A log file opened for appending (O_TRUNC with `truncate`). O_NONBLOCK for the open alone: a FIFO
/// nobody reads would block open(O_WRONLY) forever, silently, before the server says anything; it
/// fails with ENXIO instead, reported as such. Writes stay blocking, as to any log file.
func openLogFile(_ path: String, truncate: Bool) throws -> Int32 {
    let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | (truncate ? O_TRUNC : 0)
    let fd: Int32
    do {
        fd = try syscall("open", path) { Glibc.open(path, flags, 0o640) }
    } catch let e as SyscallError where e.errno == ENXIO {
        throw SWSGIError("\(e) (\(path) is a FIFO with no reader: start its reader first)")
    }
    let status = fcntl(fd, F_GETFL)
    guard status != -1, fcntl(fd, F_SETFL, status & ~O_NONBLOCK) != -1 else {
        let e = SyscallError("fcntl", context: path)
        close(fd)
        throw e
    }
    return fd
}
