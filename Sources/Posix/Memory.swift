import Glibc

/// Gives back the resident pages of this program's read-only file mappings (its code and constants)
/// with MADV_PAGEOUT. They stay in the page cache: touching them again costs a minor fault, not I/O.
/// Start-up (argument parsing, the first spawn) faults in pages an idle supervisor never needs again,
/// and the kernel maps up to 16 neighbours per fault. Returns the bytes advised, 0 if unsupported.
@discardableResult
public func releaseStartupPages() -> Int {
    guard let exe = realpath("/proc/self/exe", nil) else { return 0 }
    let exePath = String(cString: exe)
    free(exe)
    let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return 0 }
    var text: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        text += buf[0..<n]
    }
    close(fd)
    var advised = 0
    for line in text.split(separator: 10) {
        let fields = line.split(separator: 32, omittingEmptySubsequences: true)
        // start-end perms offset dev inode path: only our own file, only mappings we never write.
        guard fields.count >= 6, String(decoding: fields[5], as: UTF8.self) == exePath,
              fields[1].count == 4, fields[1][fields[1].startIndex + 1] == UInt8(ascii: "-") else { continue }
        let range = fields[0].split(separator: UInt8(ascii: "-"))
        guard range.count == 2, let start = UInt(String(decoding: range[0], as: UTF8.self), radix: 16),
              let end = UInt(String(decoding: range[1], as: UTF8.self), radix: 16),
              let p = UnsafeMutableRawPointer(bitPattern: start) else { continue }
        if madvise(p, Int(end - start), 21 /* MADV_PAGEOUT, Linux 5.4 */) == 0 { advised += Int(end - start) }
    }
    return advised
}
