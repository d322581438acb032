import Common
import Glibc
import Posix
import SWSGIConfig

/// `@(exec://COMMAND)` in a uWSGI config: COMMAND runs with `/bin/sh -c` while the config is read (uWSGI's
/// uwsgi_scheme_exec), stdin and stderr shared with swsgi, stdout read to its end. No deadline, as in uWSGI:
/// the value is whatever the command prints, however long it takes; but TERM, INT or QUIT meanwhile stop
/// the command's process group and start-up, and output past the value bound ends the read (the command
/// then gets EPIPE), so neither a stop nor a runaway command can wedge swsgi.
enum ConfigCommand {
    /// The most a value may hold (the config reader's bound); one byte more ends the read.
    static let maxOutputBytes = 64 << 10

    static func run(_ command: String, environment: [String]) -> UwsgiCommandOutput {
        do {
            return try runChecked(command, environment: environment)
        } catch let stop as Stopped {
            return UwsgiCommandOutput(stdout: "", failure: "did not finish: swsgi got \(SignalName.name(stop.signal)) while it ran (its processes were stopped)")
        } catch {
            return UwsgiCommandOutput(stdout: "", failure: "could not run: \(error)")
        }
    }

    private struct Stopped: Error { let signal: Int32 }

    private static func runChecked(_ command: String, environment: [String]) throws -> UwsgiCommandOutput {
        try HookCommand.withStopSignals { signals in try runChecked(command, environment: environment, signals: signals) }
    }

    private static func runChecked(_ command: String, environment: [String], signals: borrowing SignalFD) throws -> UwsgiCommandOutput {
        let pipe = try makePipe()
        var readEnd: Int32? = pipe.read
        defer { if let fd = readEnd { close(fd) } }
        let pid: pid_t
        do {
            var request = SpawnRequest(executablePath: "/bin/sh", argv: ["/bin/sh", "-c", command], environment: environment)
            request.standardOutput = pipe.write
            pid = try spawn(request)
        } catch {
            close(pipe.write)
            throw error
        }
        close(pipe.write)   // EOF comes once every process holding the command's stdout is done with it
        var output: [UInt8] = []
        var tooLong = false
        var end: ProcessEnd? = nil
        var chunk = [UInt8](repeating: 0, count: 4096)
        while readEnd != nil || end == nil {
            if end == nil { end = try HookCommand.reap(pid) }
            if readEnd == nil && end != nil { break }
            let ready = try waitReadable([signals.fd.raw] + (readEnd.map { [$0] } ?? []))
            if ready.contains(0) {
                while let next = try signals.next() {
                    guard HookCommand.stopSignals.contains(next.signal) else { continue }
                    // After the shell's end, what still holds its stdout is in its process group.
                    if end == nil { try HookCommand.stop(pid, signals: signals) } else { _ = kill(-pid, SIGKILL) }
                    throw Stopped(signal: next.signal)
                }
            }
            if ready.contains(1), let fd = readEnd {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw SyscallError("read", context: "the command's output")
                }
                if n == 0 || output.count + n > maxOutputBytes {
                    tooLong = n > 0
                    if tooLong { output += chunk[0..<n] }
                    close(fd)
                    readEnd = nil
                } else {
                    output += chunk[0..<n]
                }
            }
        }
        let stdout = String(decoding: output, as: UTF8.self)
        let tail = "KiB, more than a value may hold"
        switch end! {
        case _ where tooLong: return UwsgiCommandOutput(stdout: stdout, failure: "printed over \(maxOutputBytes >> 10) \(tail)")
        case .exited(0): return UwsgiCommandOutput(stdout: stdout, failure: nil)
        case .exited(127): return UwsgiCommandOutput(stdout: stdout, failure: "exited with status 127 (command not found)")
        case .exited(let code): return UwsgiCommandOutput(stdout: stdout, failure: "exited with status \(code)")
        case .signaled(let s): return UwsgiCommandOutput(stdout: stdout, failure: "was killed by \(SignalName.name(s))")
        }
    }
}
