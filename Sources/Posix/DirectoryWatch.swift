import CGlibcShim
import Glibc

/// inotify on one directory: reports names removed from it (deleted or moved away) and created in it.
public struct DirectoryWatch: ~Copyable {
    public let fd: FileDescriptor

    public enum Change: Equatable { case removed(String), created(String), overflow }

    public init(directory: String) throws {
        let raw = try syscall("inotify_init1") { shim_inotify_init() }
        let mask = shim_IN_DELETE() | shim_IN_MOVED_FROM() | shim_IN_CREATE() | shim_IN_MOVED_TO()
        do {
            try syscall("inotify_add_watch", directory) { inotify_add_watch(raw, directory, mask) }
        } catch {
            close(raw)
            throw error
        }
        fd = FileDescriptor(adopting: raw)
    }

    /// Drains pending events.
    public func changes() throws -> [Change] {
        var out: [Change] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buf.withUnsafeMutableBytes { (b) throws -> Int? in try fd.read(into: b) }
            guard let n, n > 0 else { return out }
            var off = 0
            while off + 16 <= n {
                let mask = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self) }
                let len = Int(buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self) })
                let nameBytes = buf[(off + 16)..<min(off + 16 + len, n)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                if mask & shim_IN_Q_OVERFLOW() != 0 { out.append(.overflow) }
                else if mask & (shim_IN_DELETE() | shim_IN_MOVED_FROM()) != 0 { out.append(.removed(name)) }
                else if mask & (shim_IN_CREATE() | shim_IN_MOVED_TO()) != 0 { out.append(.created(name)) }
                off += 16 + len
            }
        }
    }
}
