/// Signal names and numbers as people write them: `TERM`, `SIGTERM`, `term` or `15`.
/// Linux's numbering (the same on x86_64 and aarch64), kept here so the pure cores can name signals too.
public enum SignalName {
    public static let table: [(name: String, number: Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("BUS", 7), ("FPE", 8),
        ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("TERM", 15),
        ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22),
        ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29),
        ("PWR", 30), ("SYS", 31),
    ]
    /// SIGRTMAX as glibc reports it on Linux.
    public static let highest: Int32 = 64

    /// Parses a name or number; nil when it is not a signal.
    public static func parse(_ text: String) -> Int32? {
        if let n = Int32(text) { return (1...highest).contains(n) ? n : nil }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        return table.first { $0.name == name }?.number
    }

    /// `SIGTERM` for 15, `signal 40` for numbers without a name.
    public static func name(_ sig: Int32) -> String {
        table.first { $0.number == sig }.map { "SIG\($0.name)" } ?? "signal \(sig)"
    }
}
