import Glibc
import Posix
import ReloadCore

/// `hupwatch reload|status|stop`: finds the running hupwatch's control socket and talks to it
/// (see `ControlServer` for the protocol). Returns the exit code.
enum ControlClient {
    static func run(_ r: ControlRequest) -> Int32 {
        let path: String
        switch findControlSocket(r.target) {
        case .success(let p): path = p
        case .failure(let e):
            writeStderr("hupwatch \(r.verb.rawValue): \(e.message)")
            return ControlRequest.Exit.unreachable
        }
        let deadline = monotonicNanoseconds() + (r.wait ? r.timeout : 10 * nanosecondsPerSecond)
        let conn: FileDescriptor
        do { conn = try connect(path, until: deadline) } catch {
            writeStderr("hupwatch \(r.verb.rawValue): cannot reach hupwatch at \(path): \(error)")
            return ControlRequest.Exit.unreachable
        }
        var reader = LineReader(fd: conn.raw)
        do { _ = try conn.write(r.verb.rawValue + "\n") } catch {
            // hupwatch may have refused the connection before reading it: say what it said.
            let said = reader.line(until: monotonicNanoseconds() + nanosecondsPerSecond)
            writeStderr("hupwatch \(r.verb.rawValue): \(said ?? "\(error)")")
            return ControlRequest.Exit.unreachable
        }
        switch r.verb {
        case .status:
            guard let first = reader.line(until: deadline) else {
                writeStderr("hupwatch status: no answer from \(path)")
                return ControlRequest.Exit.unreachable
            }
            let document = reader.line(until: deadline) ?? ""
            let summary = reader.rest(until: deadline)
            writeStdout(r.json ? document : summary.hasSuffix("\n") ? String(summary.dropLast()) : summary)
            return first == "ready=1" ? ControlRequest.Exit.ok : ControlRequest.Exit.failed
        case .reload:
            guard let first = reader.line(until: deadline) else {
                writeStderr("hupwatch reload: no answer from \(path)")
                return ControlRequest.Exit.unreachable
            }
            guard first.hasPrefix("accepted ") else {
                // Not taken (hupwatch is stopping, too many callers): not a rolled-back release.
                writeStderr("hupwatch reload: \(first)")
                return ControlRequest.Exit.unreachable
            }
            let id = first.dropFirst("accepted ".count)
            guard r.wait else {
                writeStdout("reload \(id) started")
                return ControlRequest.Exit.ok
            }
            guard let outcome = reader.line(until: deadline) else {
                if reader.closed {
                    writeStderr("hupwatch reload: hupwatch went away before reload \(id) completed")
                    return ControlRequest.Exit.failed
                }
                writeStderr("hupwatch reload: reload \(id) not over after \(formatDuration(r.timeout))")
                return ControlRequest.Exit.timedOut
            }
            let words = outcome.split(separator: " ", maxSplits: 2).map(String.init)
            if words.first == "succeeded" {
                writeStdout("reload \(id) succeeded in \(words.count > 2 ? words[2] : "?") ms")
                return ControlRequest.Exit.ok
            }
            writeStderr("hupwatch reload: reload \(id) rolled back: \(words.count > 2 ? words[2] : outcome)")
            return ControlRequest.Exit.failed
        case .stop:
            guard reader.line(until: deadline) == "stopping" else {
                writeStderr("hupwatch stop: no answer from \(path)")
                return ControlRequest.Exit.unreachable
            }
            guard r.wait else { return ControlRequest.Exit.ok }
            _ = reader.rest(until: deadline)
            if !reader.closed {
                writeStderr("hupwatch stop: still running after \(formatDuration(r.timeout))")
                return ControlRequest.Exit.timedOut
            }
            return ControlRequest.Exit.ok
        }
    }

    struct Failure: Error { let message: String }

    /// The control socket's path: from the status file, or found through /proc for a pid.
    static func findControlSocket(_ target: ControlRequest.Target) -> Result<String, Failure> {
        switch target {
        case .statusFile(let f):
            guard let text = try? readTextFile(f, maxBytes: 1 << 20) else { return .failure(Failure(message: "cannot read the status file \(f)")) }
            guard let p = jsonStringField("control", in: text) else { return .failure(Failure(message: "\(f) names no control socket (written by an older hupwatch?)")) }
            return .success(p)
        case .pidFile(let f):
            guard let text = try? readTextFile(f, maxBytes: 64), let pid = Int32(text.filter { !$0.isWhitespace }), pid > 1 else {
                return .failure(Failure(message: "cannot read a pid from \(f)"))
            }
            return findControlSocket(.pid(pid))
        case .pid(let pid):
            return controlSocket(ofPID: pid)
        }
    }

    /// The pid's listening Unix sockets named `.../hupwatch.XXXXXX/control`, matched by inode in /proc/net/unix.
    static func controlSocket(ofPID pid: Int32) -> Result<String, Failure> {
        guard let dir = opendir("/proc/\(pid)/fd") else {
            let e = errno
            if e == ENOENT { return .failure(Failure(message: "no process \(pid)")) }
            // Another user's hupwatch: its fds (and its control socket) are not ours to look at.
            return .failure(Failure(message: "process \(pid) is not yours to control: /proc/\(pid)/fd: \(errnoText(e)); run this as its user (or root)"))
        }
        var inodes = Set<Substring>()
        var link = [CChar](repeating: 0, count: 64)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let n = readlink("/proc/\(pid)/fd/\(name)", &link, link.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: link[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("socket:["), target.hasSuffix("]") { inodes.insert(target.dropFirst(8).dropLast()[...]) }
        }
        closedir(dir)
        guard let table = try? readTextFile("/proc/\(pid)/net/unix", maxBytes: 64 << 20) else {
            return .failure(Failure(message: "cannot read /proc/\(pid)/net/unix"))
        }
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 8, inodes.contains(f[6]), f[7].hasSuffix("/control"), f[7].contains("/hupwatch.") else { continue }
            return .success(String(f[7]))
        }
        return .failure(Failure(message: "process \(pid) has no hupwatch control socket (is it hupwatch?)"))
    }

    /// The value of a top-level `"name":"..."` string in a JSON document written by hupwatch.
    static func jsonStringField(_ name: String, in text: String) -> String? {
        let key = Array("\"\(name)\":\"")
        let chars = Array(text)
        guard let start = (0...max(0, chars.count - key.count)).first(where: { chars[$0..<min(chars.count, $0 + key.count)].elementsEqual(key) }) else { return nil }
        var out = ""
        var escaped = false
        for c in chars[(start + key.count)...] {
            if escaped {
                out.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\"" {
                return out
            } else {
                out.append(c)
            }
        }
        return nil
    }

    static func connect(_ path: String, until deadline: Instant) throws -> FileDescriptor {
        while true {
            do { return try UnixSocket.connect(path: path, nonBlocking: true) } catch let e as SyscallError where e.errno == EAGAIN {
                // A full backlog: hupwatch is busy; try again until the deadline.
                guard monotonicNanoseconds() < deadline else { throw e }
                var ts = timespec(tv_sec: 0, tv_nsec: 10_000_000)
                nanosleep(&ts, nil)
            }
        }
    }

    /// Lines from a non-blocking socket, each read waiting at most until a deadline.
    struct LineReader {
        let fd: Int32
        var buffer: [UInt8] = []
        var closed = false

        mutating func line(until deadline: Instant) -> String? {
            while true {
                if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    return line
                }
                if closed || !fill(until: deadline) { return nil }
            }
        }

        mutating func rest(until deadline: Instant) -> String {
            while !closed, fill(until: deadline) {}
            defer { buffer = [] }
            return String(decoding: buffer, as: UTF8.self)
        }

        /// Reads what arrives before the deadline; false on timeout or EOF.
        private mutating func fill(until deadline: Instant) -> Bool {
            let now = monotonicNanoseconds()
            guard now < deadline else { return false }
            let ms = Int32(min((deadline - now) / 1_000_000 + 1, UInt64(Int32.max)))
            guard waitReadable(fd, timeoutMilliseconds: ms) else { return false }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 {
                if n < 0 && (errno == EAGAIN || errno == EINTR) { return true }
                closed = true
                return false
            }
            buffer += chunk[..<n]
            return true
        }
    }
}
