import CGlibcShim
import Glibc
import Posix
import SWSGI

/// uWSGI's `post-buffering = N`: the whole request body is read before the app is called, the first N
/// bytes in memory and the rest in a temporary file unlinked at once (so nothing is left behind, even
/// after a SIGKILL). The app then reads wsgi.input from there, never from the client's socket.
enum PostBuffering {
    /// Reads `body` to its end; throws the body's own errors (413, 408, a broken framing).
    static func drain(_ body: RequestBody, memoryBytes: Int) throws -> BodyBuffer {
        var memory: [UInt8] = []
        var file: TemporaryFile? = nil
        while let piece = try body.read() {
            if file == nil, memory.count + piece.count <= memoryBytes {
                memory += piece
                continue
            }
            if file == nil { file = try TemporaryFile() }
            try file!.append(piece)
        }
        var memoryGiven = memory.isEmpty
        var offset = 0
        return BodyBuffer {
            if !memoryGiven {
                memoryGiven = true
                return memory
            }
            guard let file, offset < file.size else { return nil }
            let piece = try file.read(at: offset, max: 1 << 16)
            offset += piece.count
            return piece
        }
    }
}

/// An anonymous file (O_TMPFILE) in $TMPDIR (or /tmp), gone when released.
final class TemporaryFile {
    let fd: Int32
    private(set) var size = 0

    init() throws {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        fd = try syscall("open(O_TMPFILE)", dir) { shim_open_tmpfile(dir) }
    }

    deinit { close(fd) }

    func append(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = try bytes.withUnsafeBytes { b in
                try syscall("pwrite", "post-buffering temporary file") { pwrite(fd, b.baseAddress! + done, b.count - done, off_t(size + done)) }
            }
            done += n
        }
        size += done
    }

    func read(at offset: Int, max: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Swift.min(max, size - offset))
        let n = try out.withUnsafeMutableBytes { b in
            try syscall("pread", "post-buffering temporary file") { pread(fd, b.baseAddress!, b.count, off_t(offset)) }
        }
        guard n > 0 else { throw SWSGIError("post-buffering temporary file: ended at \(offset) of \(size) bytes") }
        return Array(out[0..<n])
    }
}
