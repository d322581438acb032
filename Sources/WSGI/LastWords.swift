import Glibc
import SWSGI

/// The one line a guard writes as the process ends during the app's import (ExitGuard: exit(); CrashGuard:
/// SIGABRT and faults), kept in memory allocated up front so the handler neither allocates nor runs an initializer.
struct LastWords {
    static let capacity = 512
    /// `capacity` bytes, allocated once and never freed.
    let line: UnsafeMutablePointer<UInt8>
    var length = 0
    /// The exit status while armed; 0 when not.
    var status: Int32 = 0

    init() {
        line = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.capacity)
        line.initialize(repeating: 0, count: Self.capacity)
    }

    /// Keeps `text` up to a NUL (as the C string it used to be), cut to 510 bytes, plus a newline.
    mutating func keep(_ text: String) {
        let bytes = Array(text.utf8.prefix(while: { $0 != 0 }).prefix(Self.capacity - 2))
        bytes.withUnsafeBufferPointer { line.update(from: $0.baseAddress!, count: $0.count) }
        line[bytes.count] = UInt8(ascii: "\n")
        length = bytes.count + 1
    }

    /// Async-signal-safe (write, unlink): writes the line, removes the temporary socket name.
    func say() {
        _ = write(2, line, length)
        StartupCleanup.removeNow()
    }

    /// Async-signal-safe (write, unlink, _exit): `say()`, then ends the process.
    func sayAndExit(_ status: Int32) -> Never {
        say()
        _exit(status)
    }
}
