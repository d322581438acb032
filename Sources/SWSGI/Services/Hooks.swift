import Common
import Glibc
import Posix
import SWSGIConfig

/// `--hook-PHASE ACTION:ARG` and `--exec-PHASE CMD`: run in the master, in order, at their phase.
/// The first failure stops start-up with the hook and the reason.
enum Hooks {
    static func run(_ phase: HookPhase, _ hooks: [Hook], environment: [String]) throws {
        for h in hooks where h.phase == phase {
            do { try perform(h.action, environment: environment) } catch {
                throw SWSGIError("--hook-\(phase.rawValue) \(h.action): \(error)")
            }
        }
    }

    private static func perform(_ action: HookAction, environment: [String]) throws {
        switch action {
        case .print(let text):
            // Like uWSGI: the text as it is, unless an encoder (--log-encoder json) wraps every line.
            if ServicesRuntime.shared.options.logEncoder == .plain { writeStderr(text) } else { ServerLog.line(text) }
        case .mkdir(let path):
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw SyscallError("mkdir", context: path) }
        case .unlink(let path):
            if Glibc.unlink(path) != 0 && errno != ENOENT { throw SyscallError("unlink", context: path) }
        case .write(let path, let text):
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SyscallError("open", context: path) }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw SyscallError("write", context: path) }
                off += n
            }
        case .exec(let command):
            let pid = try spawn(SpawnRequest(executablePath: "/bin/sh", argv: ["/bin/sh", "-c", command], environment: environment))
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 {
                if errno != EINTR { throw SyscallError("waitpid", context: "hook") }
            }
            let status = ProcessEnd(waitStatus: st)
            if status.shellCode != 0 { throw SWSGIError("the command ended with \(status)") }
        }
    }
}
