import Glibc

/// The temporary socket name bound before the app's import (see `Listener.bindUnix`): an app that ends
/// the process during the import (a C exit(), an abort()) must not leave it behind, so the handlers that
/// catch those remove it. Kept as a preallocated C string: the handlers only read it and call unlink(2),
/// which is async-signal-safe.
public enum StartupCleanup {
    static let capacity = 4096

    /// Records `path` (nil: nothing to remove). Called outside any handler, before and after the import.
    public static func set(_ path: String?) {
        let buffer = startupCleanupPath
        buffer[0] = 0
        guard let path else { return }
        let bytes = Array(path.utf8)
        guard bytes.count < capacity, !bytes.contains(0) else { return }
        bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
        buffer[bytes.count] = 0
    }

    /// Removes the recorded path, if any: safe inside a signal handler or an atexit handler.
    public static func removeNow() {
        let buffer = startupCleanupPath
        if buffer[0] != 0 { _ = buffer.withMemoryRebound(to: CChar.self, capacity: capacity) { unlink($0) } }
    }
}

/// Allocated once, never freed; `nonisolated(unsafe)` because a pointer is not Sendable: the `let` never
/// changes, and only the thread loading the app writes the pointee.
private nonisolated(unsafe) let startupCleanupPath: UnsafeMutablePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: StartupCleanup.capacity)
    p.initialize(repeating: 0, count: StartupCleanup.capacity)
    return p
}()
