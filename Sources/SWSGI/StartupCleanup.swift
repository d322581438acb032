import Glibc

/// The temporary socket names bound before the app's import (see `Listener.bindUnix`): an app that ends
/// the process during the import (a C exit(), an abort()) must not leave it behind, so the handlers that
/// catch those remove it. Kept as a preallocated C string: the handlers only read it and call unlink(2),
/// which is async-signal-safe.
public enum StartupCleanup {
    static let capacity = 4096

    /// Records `paths` (empty: nothing to remove), each NUL-terminated, an empty one ending the list.
    /// Called outside any handler, before and after the import.
    public static func set(_ paths: [String]) {
        let buffer = startupCleanupPath
        buffer[0] = 0
        startupCleanupOwner.pointee = getpid()
        var bytes: [UInt8] = []
        for path in paths where !path.isEmpty && !path.utf8.contains(0) { bytes += Array(path.utf8) + [0] }
        guard !bytes.isEmpty, bytes.count < capacity else { return }
        bytes.append(0)
        bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// Removes the recorded paths, if any: safe inside a signal handler or an atexit handler. Only in the
    /// process that recorded them: one the app forked during its import inherits the list, not the paths.
    public static func removeNow() {
        guard getpid() == startupCleanupOwner.pointee else { return }
        var p = startupCleanupPath
        while p[0] != 0 {
            _ = p.withMemoryRebound(to: CChar.self, capacity: 1) { unlink($0) }
            while p[0] != 0 { p += 1 }
            p += 1
        }
    }
}

/// Allocated once, never freed; `nonisolated(unsafe)` because a pointer is not Sendable: the `let` never
/// changes, and only the thread loading the app writes the pointee.
private nonisolated(unsafe) let startupCleanupPath: UnsafeMutablePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: StartupCleanup.capacity)
    p.initialize(repeating: 0, count: StartupCleanup.capacity)
    return p
}()

/// The pid that recorded the paths (see `removeNow`), allocated beside them for the same reason.
private nonisolated(unsafe) let startupCleanupOwner: UnsafeMutablePointer<pid_t> = {
    let p = UnsafeMutablePointer<pid_t>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()
