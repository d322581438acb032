import Glibc

/// Tells a process forked from this one apart from it without a getpid(2) per check: pthread_atfork's
/// child handler counts, in the child, every fork made through glibc (Python's os.fork() included).
/// Save `current` in the process to guard, compare later.
public enum ForkCounter {
    nonisolated(unsafe) private static var forks: UInt64 = 0
    private static let counting: Bool = pthread_atfork(nil, nil, { ForkCounter.forks &+= 1 }) == 0

    /// Changes in every child forked after the first read. (Should registering the handler fail,
    /// the pid stands in for the count.)
    public static var current: UInt64 {
        counting ? forks : UInt64(getpid()) | 1 << 63
    }
}
