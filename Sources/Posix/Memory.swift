import Glibc

/// Gives back the resident pages of this program's read-only file mappings (its code and constants)
/// with MADV_PAGEOUT. They stay in the page cache: touching them again costs a minor fault, not I/O.
/// Start-up (argument parsing, the first spawn) faults in pages an idle supervisor never needs again,
/// and the kernel maps up to 16 neighbours per fault. Returns the bytes advised, 0 if unsupported.
@discardableResult
public func releaseStartupPages() -> Int {
    guard let exePath = ownExecutablePath() else { return 0 }
    guard let text = procFile("/proc/self/maps") else { return 0 }
    var advised = 0
    for line in text.split(separator: 10) {
        let fields = line.split(separator: 32, omittingEmptySubsequences: true)
        // start-end perms offset dev inode path: only our own file, only mappings we never write.
        guard fields.count >= 6, String(decoding: fields[5], as: UTF8.self) == exePath,
              fields[1].count == 4, fields[1][fields[1].startIndex + 1] == UInt8(ascii: "-") else { continue }
        guard let r = addressRange(fields[0]), let p = UnsafeMutableRawPointer(bitPattern: r.lowerBound) else { continue }
        if madvise(p, Int(r.upperBound - r.lowerBound), 21 /* MADV_PAGEOUT, Linux 5.4 */) == 0 {
            advised += Int(r.upperBound - r.lowerBound)
        }
    }
    return advised
}

/// Drops this process's page-table entries for code: r-xp file mappings with no private copies in
/// them. The pages stay in the page cache (and mapped in other processes); code that runs again comes
/// back with a minor fault. A forked worker calls it once it has warmed up: the code the master ran at
/// start-up and the code of the worker's first requests (one-time set-up: type metadata, the demangler)
/// leave its resident set, which then shows the code it keeps running. (MADV_PAGEOUT, above, skips
/// pages another process maps, so it cannot do this after a fork.) Only a single-threaded process does
/// it: another thread (one an app started) could unmap a listed range and map its own memory there
/// between the read of smaps and the madvise, which would then zero that memory. Returns the bytes.
@discardableResult
public func dropCodePageTableEntries() -> Int {
    // Only this thread can start another, so a count of one holds until this function returns.
    guard let status = procFile("/proc/self/status"), threadCount(status: status) == 1,
          let smaps = procFile("/proc/self/smaps") else { return 0 }
    var dropped = 0
    for r in codeMappingsToDrop(smaps: smaps) {
        guard let p = UnsafeMutableRawPointer(bitPattern: r.lowerBound) else { continue }
        if madvise(p, Int(r.upperBound - r.lowerBound), MADV_DONTNEED) == 0 { dropped += Int(r.upperBound - r.lowerBound) }
    }
    return dropped
}

/// The "Threads:" figure of a /proc/PID/status text.
public func threadCount(status: [UInt8]) -> Int? {
    for line in status.split(separator: 10) {
        let fields = line.split(whereSeparator: { $0 == 32 || $0 == 9 })
        if fields.count == 2, fields[0].elementsEqual("Threads:".utf8) { return Int(String(decoding: fields[1], as: UTF8.self)) }
    }
    return nil
}

/// The mappings of a /proc/PID/smaps text whose page-table entries can go without losing data: r-xp,
/// backed by a file, and no private page in them, resident (Anonymous) or swapped out (Swap). A private
/// page (text relocations, a debugger's breakpoint) would revert to the file's bytes.
public func codeMappingsToDrop(smaps text: [UInt8]) -> [Range<UInt>] {
    // Each mapping: a header line (start-end perms offset dev inode path), then "Key: value kB" lines.
    var candidate: Range<UInt>? = nil
    var found: [Range<UInt>] = []
    for line in text.split(separator: 10) {
        let fields = line.split(separator: 32, omittingEmptySubsequences: true)
        guard let first = fields.first else { continue }
        if first.contains(UInt8(ascii: "-")) && !first.contains(UInt8(ascii: ":")) {
            if let c = candidate { found.append(c) }
            candidate = nil
            guard fields.count >= 6, fields[1].elementsEqual("r-xp".utf8), fields[5].first == UInt8(ascii: "/"),
                  let r = addressRange(first) else { continue }
            candidate = r
        } else if first.elementsEqual("Anonymous:".utf8) || first.elementsEqual("Swap:".utf8),
                  !(fields.count >= 2 && fields[1].elementsEqual("0".utf8)) {
            candidate = nil
        }
    }
    if let c = candidate { found.append(c) }
    return found
}

/// The `start-end` (hex) field of a maps/smaps header line; nil unless it is one with end > start.
private func addressRange(_ field: ArraySlice<UInt8>) -> Range<UInt>? {
    let parts = field.split(separator: UInt8(ascii: "-"))
    guard parts.count == 2, let start = UInt(String(decoding: parts[0], as: UTF8.self), radix: 16),
          let end = UInt(String(decoding: parts[1], as: UTF8.self), radix: 16), end > start else { return nil }
    return start..<end
}

/// A /proc file's whole text; nil when it cannot be opened (no /proc) or a read fails (a record cut
/// short would be parsed without its counters).
private func procFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var text: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return text }
        text += buf[0..<n]
    }
}
