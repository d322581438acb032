import Glibc
import Posix
import SWSGIConfig

/// uWSGI's static-file rules (core/static.c), compiled once per worker: index files, Expires, gzip
/// variants, safe folders outside DIR and extensions left to the app.
struct StaticRules {
    let index: [String]
    let expires: [(rule: ExpiresRule, regex: Regex<AnyRegexOutput>)]
    let expiresByType: [ExpiresTypeRule]
    let gzipAll: Bool
    let gzipPatterns: [Regex<AnyRegexOutput>]
    let gzipPrefixes: [String]
    let gzipSuffixes: [String]
    /// Each --static-safe folder, resolved, with an fd files are opened beneath.
    let safe: [(path: String, fd: Int32)]
    let skipExtensions: [String]

    init(_ o: StaticFileOptions, defaultIndex: [String]) {
        index = o.index.isEmpty ? defaultIndex : o.index
        // The patterns were compiled when the options were read: a failure here cannot happen.
        expires = o.expires.compactMap { r in (try? Regex(r.pattern)).map { (r, $0) } }
        expiresByType = o.expiresByType
        gzipAll = o.gzipAll
        gzipPatterns = o.gzipPatterns.compactMap { try? Regex($0) }
        gzipPrefixes = o.gzipPrefixes
        gzipSuffixes = o.gzipSuffixes
        safe = o.safe.compactMap { dir in
            guard let real = realpath(dir, nil) else { return nil }
            defer { free(real) }
            let fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            return fd >= 0 ? (String(cString: real), fd) : nil
        }
        skipExtensions = o.skipExtensions
    }

    /// --static-skip-ext: the file is the app's.
    func skips(_ path: String) -> Bool { skipExtensions.contains { path.hasSuffix($0) } }

    /// Whether to look for FILE.gz (uwsgi_static_want_gzip: all, a prefix, a suffix or a regex of the path).
    func wantsGzip(_ path: String) -> Bool {
        gzipAll || gzipPrefixes.contains { path.hasPrefix($0) } || gzipSuffixes.contains { path.hasSuffix($0) }
            || gzipPatterns.contains { path.contains($0) }
    }

    /// The Expires time (epoch seconds) of the first rule that matches, tried in uWSGI's order: the file's
    /// path, PATH_INFO, the request URI, then the content type (without its parameters); nil for none.
    func expires(file: String, uri: String, pathInfo: String, contentType: String, modified: Int) -> Int? {
        func at(_ seconds: Int, _ fromModification: Bool) -> Int { (fromModification ? modified : time(nil)) + seconds }
        for subject in [ExpiresRule.Subject.file, .pathInfo, .uri] {
            let text = subject == .file ? file : subject == .pathInfo ? pathInfo : uri
            // Rules from now before rules from mtime, as uWSGI walks its two lists.
            for mtime in [false, true] {
                for (rule, regex) in expires where rule.subject == subject && rule.fromModification == mtime && text.contains(regex) {
                    return at(rule.seconds, mtime)
                }
            }
        }
        let type = contentType.split(separator: ";").first.map { String($0).lowercased() } ?? ""
        for mtime in [false, true] {
            if let r = expiresByType.first(where: { $0.fromModification == mtime && $0.contentType == type }) { return at(r.seconds, mtime) }
        }
        return nil
    }

    /// --static-safe: `relative` under `root` leads (through symlinks) into a safe folder: opened beneath
    /// that folder, so the check and the open see the same path. Nil when it leads anywhere else.
    func openSafe(root: String, _ relative: String) -> StaticFiles.Opened? {
        guard !safe.isEmpty, let real = realpath(root + "/" + relative, nil) else { return nil }
        let path = String(cString: real)
        free(real)
        for (dir, fd) in safe {
            // `/` itself (realpath's only path ending in a slash) holds every path.
            let prefix = dir.hasSuffix("/") ? dir : dir + "/"
            guard path.hasPrefix(prefix),
                  let f = try? openBeneath(fd, String(path.dropFirst(prefix.count)), flags: StaticFiles.openFlags) else { continue }
            return StaticFiles.opened(f.release())
        }
        return nil
    }
}
