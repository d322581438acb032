import Common
import Glibc
import Posix
import SWSGIConfig

/// `--hook-PHASE ACTION:ARG` and `--exec-PHASE CMD`: run in the master, in order, at their phase.
/// The first failure stops start-up with the hook and the reason.
enum Hooks {
    static func run(_ phase: HookPhase, _ hooks: [Hook], environment: [String]) throws {
        for h in hooks where h.phase == phase {
            let label = "--hook-\(phase.rawValue) \(h.action)"
            do { try perform(h.action, label: label, environment: environment) } catch {
                throw SWSGIError("\(label): \(error)")
            }
        }
    }

    private static func perform(_ action: HookAction, label: String, environment: [String]) throws {
        switch action {
        case .print(let text):
            // Like uWSGI: the text as it is, unless a date or an encoder (--log-encoder json) wraps every line.
            ServerLog.raw(text)
        case .mkdir(let path):
            if mkdir(path, 0o755) != 0 {
                guard errno == EEXIST else { throw SyscallError("mkdir", context: path) }
                // Only an existing directory (or a link to one) will do: a file or a dangling link is an error.
                var st = stat()
                if stat(path, &st) != 0 || st.st_mode & S_IFMT != S_IFDIR {
                    throw SWSGIError("mkdir(\(path)): exists and is not a directory")
                }
            }
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
            let status = try HookCommand.run(command, label: label, environment: environment)
            if status.shellCode != 0 { throw SWSGIError("the command ended with \(status)") }
        }
    }
}
