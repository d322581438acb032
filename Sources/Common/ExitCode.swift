/// Exit statuses of both programs (hupwatch and swsgi), written once. Signals end a process with the
/// shell's 128 + N (`ProcessEnd.shellCode`); these are the statuses the programs choose.
public enum ExitCode {
    public static let success: Int32 = 0
    /// A failure at run time (a syscall refused, an app that cannot be served), said in one line.
    public static let failure: Int32 = 1
    /// A bad command line.
    public static let usage: Int32 = 2
    /// The environment refused: bad --chdir, socket folder missing, socket path in use, pid file unwritable.
    public static let environment: Int32 = 3
    /// swsgi: the hosted app could not be loaded (an import that raised or tried to end the process;
    /// with --lazy-apps a worker that ended before it was ready). Also a worker's own status for it.
    public static let appLoadFailed: Int32 = 22
    /// Command not executable / not found, as a shell reports it.
    public static let notExecutable: Int32 = 126
    public static let notFound: Int32 = 127
}

/// Restart back-off shared by both programs: hupwatch restarting its command, swsgi respawning a worker
/// that keeps dying young. Doubles from `initial` up to `maximum`.
public struct Backoff: Sendable, Equatable {
    public let initialNanoseconds: UInt64
    public let maximumNanoseconds: UInt64
    public private(set) var currentNanoseconds: UInt64

    public static let restart = Backoff(initialNanoseconds: 500_000_000, maximumNanoseconds: 30_000_000_000)

    public init(initialNanoseconds: UInt64, maximumNanoseconds: UInt64) {
        self.initialNanoseconds = initialNanoseconds
        self.maximumNanoseconds = max(initialNanoseconds, maximumNanoseconds)
        currentNanoseconds = initialNanoseconds
    }

    /// The wait before the next try; the one after it doubles (up to the maximum).
    public mutating func next() -> UInt64 {
        let wait = currentNanoseconds
        currentNanoseconds = currentNanoseconds > maximumNanoseconds / 2 ? maximumNanoseconds : currentNanoseconds * 2
        return wait
    }

    /// A success: the next failure waits `initial` again.
    public mutating func reset() { currentNanoseconds = initialNanoseconds }
}
