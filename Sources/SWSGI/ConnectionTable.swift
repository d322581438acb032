import Posix

/// A worker's open connections by fd: fds are small numbers the kernel reuses, so an array indexed
/// by fd finds a connection on every event without hashing.
struct ConnectionTable {
    private var slots: [Connection?] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    subscript(fd: Int32) -> Connection? {
        get { fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)] : nil }
        set {
            guard fd >= 0 else { return }
            let i = Int(fd)
            if i >= slots.count {
                guard newValue != nil else { return }
                slots += [Connection?](repeating: nil, count: i + 1 - slots.count)
            }
            if slots[i] == nil, newValue != nil { count += 1 } else if slots[i] != nil, newValue == nil { count -= 1 }
            slots[i] = newValue
        }
    }

    /// When fd's connection was last active, read in place (a look per ready connection; the subscript would
    /// hand out a counted reference).
    func lastActivity(_ fd: Int32) -> Instant? {
        fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)]?.lastActivity : nil
    }

    /// The open connections (a copy: callers may close some while walking it).
    var values: [Connection] { slots.compactMap { $0 } }
}
