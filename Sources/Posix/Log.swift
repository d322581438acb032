import Glibc

/// One write(2) per line to stderr, so lines from several processes never interleave mid-line.
public func writeStderr(_ line: String) { writeLine(line, to: 2) }

/// Help and version text on stdout, newline-terminated.
public func writeStdout(_ text: String) { writeLine(text, to: 1) }

/// One write(2) of `text` plus a newline (when it has none), retried on EINTR and short writes.
public func writeLine(_ text: String, to fd: Int32) {
    var bytes = Array(text.utf8)
    if bytes.last != 10 { bytes.append(10) }
    writeAll(bytes, to: fd)
}

/// Writes every byte to `fd`, retrying on EINTR and short writes; gives up quietly on an error (a log
/// that cannot be written has nowhere to report it).
public func writeAll(_ bytes: [UInt8], to fd: Int32) {
    bytes.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }
}

/// Wall-clock time as `2026-11-23T19:55:10.123Z`, for log lines.
public func timestamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func pad(_ v: Int32, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
        + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
}
