/// How a process ended, as waitpid reported it. Both programs' cores reason about it, so it lives here once.
public enum ProcessEnd: Equatable, Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The shell's convention: the exit code, or 128 + the signal number.
    public var shellCode: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "killed by \(SignalName.name(s))"
        }
    }
}
