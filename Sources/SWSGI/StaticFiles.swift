import Glibc
import HTTP
import Posix
import SWSGIConfig

/// `--app static:DIR`: files under DIR with content types, ETag / If-None-Match, single byte ranges,
/// and no way out of DIR (percent-decoding first, then `..`, NUL and symlinks leading outside refused).
/// Files are opened beneath DIR's fd in one kernel step (openat2 RESOLVE_BENEATH, see `openBeneath`):
/// no check-then-open window a symlink swapped in meanwhile could slip through.
public struct StaticFiles {
    public let root: String
    /// DIR, opened once; every file is opened relative to it.
    let rootFD: Int32
    /// Bodies up to this size are read and sent with the head in one write (the socket takes them at once, so
    /// a slow client cannot hold the worker); larger ones are a `ResponseFile`, sent with sendfile(2).
    static let maxInMemory = 64 << 10
    /// uWSGI's static rules (index files, Expires, gzip variants, safe paths, skipped extensions).
    let rules: StaticRules

    /// `index`: the files tried for a directory when no --static-index is given.
    public init(root: String, options: StaticFileOptions = StaticFileOptions(), index: [String] = ["index.html"]) throws {
        rules = StaticRules(options, defaultIndex: index)
        guard let real = realpath(root, nil) else {
            throw SWSGIError("--app static:\(root): \(String(cString: strerror(errno)))")
        }
        defer { free(real) }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw SWSGIError("--app static:\(root): not a directory") }
        self.root = String(cString: real)
        let fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SWSGIError("--app static:\(root): \(String(cString: strerror(errno)))") }
        rootFD = fd
    }

    /// Closes DIR's fd and the --static-safe folders' (for an instance made only to check DIR).
    func closeFolders() {
        Glibc.close(rootFD)
        for (_, fd) in rules.safe { Glibc.close(fd) }
    }

    /// The file at `relative` beneath DIR, or the status to answer.
    /// The fd (the caller closes it) and its stat, or the answer to give.
    private func openFile(_ relative: String) -> Opened {
        let fd: Int32
        do { fd = try openBeneath(rootFD, relative, flags: Self.openFlags).release() } catch let e as SyscallError {
            // --static-safe: a symlink leading out of DIR into a safe folder is followed there (and only there).
            if e.errno == EXDEV || e.errno == ELOOP, let safe = rules.openSafe(root: root, relative) { return safe }
            switch e.errno {
            case EACCES: return .answer(Response(status: 403, text: "forbidden\n"))
            // Out of fds (or memory) is not "no such file": a 404 would be cached and believed.
            case EMFILE, ENFILE, ENOMEM:
                return .answer(Response(status: 503, headers: ["Retry-After": "1"], text: "file not opened: \(e.errno == ENOMEM ? "out of memory" : "out of file descriptors")\n"))
            default: return .answer(Response(status: 404, text: "not found\n"))
            }
        } catch { return .answer(Response(status: 404, text: "not found\n")) }
        return Self.opened(fd)
    }

    /// O_NONBLOCK: a FIFO (or a device) in DIR must not hold the worker in open(2) until some writer
    /// comes; O_NOCTTY: a terminal opened never becomes ours. Regular files read the same either way.
    static let openFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY

    /// `fd` when it is a regular file or a directory (closed and 404 otherwise: a FIFO, socket or device
    /// is nothing to serve, and reading one could block).
    static func opened(_ fd: Int32) -> Opened {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFDIR else {
            close(fd)
            return .answer(Response(status: 404, text: "not found\n"))
        }
        return .file(OpenedFile(fd: fd, st: st))
    }

    struct OpenedFile {
        init(fd: Int32, st: stat) {
            self.fd = fd
            self.st = st
        }
        let fd: Int32
        let st: stat
    }

    enum Opened {
        case file(OpenedFile)
        case answer(Response)
    }

    public func respond(_ request: Request) throws -> Response { try respond(request, path: request.path) }

    /// The file at `path` (percent-encoded, as in the request) beneath DIR: `static-map` passes what
    /// follows its mount point.
    func respond(_ request: Request, path: String) throws -> Response {
        guard request.method == "GET" || request.method == "HEAD" else {
            return Response(status: 405, headers: ["Allow": "GET, HEAD"], text: "method not allowed\n")
        }
        guard let decoded = Self.percentDecode(path), !decoded.contains("\0"),
              !decoded.split(separator: "/").contains("..") else {
            return Response(status: 400, text: "bad path\n")
        }
        var relative = String(decoded.drop(while: { $0 == "/" }))
        if relative.isEmpty { relative = "." }
        var opened: OpenedFile
        switch openFile(relative) {
        case .answer(let answer): return answer
        case .file(let f): opened = f
        }
        var candidate = relative
        if (opened.st.st_mode & S_IFMT) == S_IFDIR {
            close(opened.fd)
            // The index files in order (uWSGI's static-index); each may itself be a symlink, resolved
            // beneath DIR like any path. None there: 404 (a static-map then leaves the request to the app).
            var found: OpenedFile? = nil
            for name in rules.index {
                guard case .file(let f) = openFile(relative + "/" + name) else { continue }
                if (f.st.st_mode & S_IFMT) == S_IFREG { found = f; candidate = relative + "/" + name; break }
                close(f.fd)
            }
            guard let found else { return Response(status: 404, text: "not found\n") }
            opened = found
        }
        guard (opened.st.st_mode & S_IFMT) == S_IFREG, !rules.skips(candidate) else {
            close(opened.fd)
            return Response(status: 404, text: "not found\n")
        }
        let contentType = Self.contentType(candidate)
        var extra: HTTPHeaders = [:]
        // --static-gzip*: FILE.br, else FILE.gz instead (uwsgi_static_want_gzip's order), when the client takes
        // that encoding and the variant is a regular file.
        if rules.wantsGzip(root + "/" + candidate) {
            let accepted = request.header("Accept-Encoding") ?? ""
            var varies = false
            for encoding in ["br", "gzip"] {
                guard case .file(let variant) = openFile(candidate + (encoding == "br" ? ".br" : ".gz")) else { continue }
                guard (variant.st.st_mode & S_IFMT) == S_IFREG else { close(variant.fd); continue }
                varies = true
                guard accepted.contains(encoding), extra.first("Content-Encoding") == nil else { close(variant.fd); continue }
                close(opened.fd)
                opened = variant
                extra.append("Content-Encoding", encoding)
            }
            if varies { extra.append("Vary", "Accept-Encoding") }
        }
        let st = opened.st
        if let expires = rules.expires(file: root + "/" + candidate, uri: request.target, pathInfo: request.path,
                                       contentType: contentType, modified: Int(st.st_mtim.tv_sec)) {
            extra.append("Expires", String(decoding: HTTPDate.format(epochSeconds: expires), as: UTF8.self))
        }
        // Every early answer below must not leak the fd.
        var fdOwned = true
        defer { if fdOwned { close(opened.fd) } }

        let size = Int(st.st_size)
        let etag = "\"\(String(st.st_ino, radix: 16))-\(String(size, radix: 16))-\(String(st.st_mtim.tv_sec, radix: 16))\""
        var headers: HTTPHeaders = ["Content-Type": contentType, "ETag": etag, "Accept-Ranges": "bytes"]
        for f in extra { headers.append(f.name, f.value) }
        if let inm = request.header("If-None-Match"),
           inm.split(separator: ",").contains(where: { let t = $0.trimmingSpaces; return t == "*" || t == etag || t == "W/" + etag }) {
            var notModified: HTTPHeaders = ["ETag": etag]
            for f in extra where f.name != "Content-Encoding" { notModified.append(f.name, f.value) }
            return Response(status: 304, headers: notModified)
        }
        var start = 0, end = size - 1, status = 200
        if let range = request.header("Range") {
            switch Self.parseRange(range, size: size) {
            case .whole: break
            case .unsatisfiable:
                return Response(status: 416, headers: ["Content-Range": "bytes */\(size)"], text: "range not satisfiable\n")
            case .part(let s, let e):
                (start, end, status) = (s, e, 206)
                headers.append("Content-Range", "bytes \(s)-\(e)/\(size)")
            }
        }
        let length = max(0, end - start + 1)
        let fd = opened.fd
        fdOwned = false
        if length <= Self.maxInMemory {
            defer { close(fd) }
            var body = [UInt8](repeating: 0, count: length)
            var got = 0
            while got < length {
                let n = body.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, length - got, off_t(start + got)) }
                if n <= 0 { break }
                got += n
            }
            return Response(status: status, headers: headers, body: Array(body[0..<got]))
        }
        // sendfile(2) from the file, as uWSGI sends every static file (uwsgi_response_sendfile_do): by the worker,
        // or by an offload thread (--offload-threads) once the head is out. The fd is closed when the response
        // is released (it may never be sent: HEAD, or the client gone before the head was written).
        return Response(status: status, headers: headers, file: ResponseFile(fd: fd, offset: start, count: length, owned: true))
    }

    enum RangeAnswer: Equatable { case whole, unsatisfiable, part(Int, Int) }

    /// One `bytes=` range; several ranges are answered with the whole file (allowed by RFC 9110).
    static func parseRange(_ header: String, size: Int) -> RangeAnswer {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return .whole }
        let a = spec[0].trimmingSpaces, b = spec[1].trimmingSpaces
        if a.isEmpty {
            guard let suffix = Self.rangeNumber(b), suffix > 0 else { return .unsatisfiable }
            return size == 0 ? .unsatisfiable : .part(max(0, size - suffix), size - 1)
        }
        guard let s = Self.rangeNumber(a) else { return .whole }
        guard s < size else { return .unsatisfiable }
        if b.isEmpty { return .part(s, size - 1) }
        guard let e = Self.rangeNumber(b), e >= s else { return .whole }
        return .part(s, min(e, size - 1))
    }

    /// RFC 9110 §14.1.1: 1*DIGIT with no upper bound; a number beyond Int is past any file's end,
    /// so it is clamped (a huge suffix means the whole file, a huge last-pos the end). nil: not digits.
    static func rangeNumber<S: StringProtocol>(_ text: S) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for c in text.utf8 {
            guard c >= 0x30, c <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (v, o2) = m.addingReportingOverflow(Int(c - 0x30))
            value = o1 || o2 ? Int.max : v
        }
        return value
    }

    static func percentDecode(_ s: String) -> String? {
        PercentDecoding.decode(s, strict: true).flatMap { String(validating: $0, as: UTF8.self) }
    }

    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "txt": "text/plain; charset=utf-8", "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "ico": "image/x-icon",
        "avif": "image/avif", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "wasm": "application/wasm",
        "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg", "csv": "text/csv; charset=utf-8",
        "md": "text/markdown; charset=utf-8",
    ]

    static func contentType(_ path: String) -> String {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return types[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
