/// uWSGI's static-file rules (core/static.c) for `--static-map` and `--app static:DIR`: index files,
/// Expires headers, precompressed variants, safe paths outside DIR, extensions left to the app.
public struct StaticFileOptions: Equatable, Sendable {
    /// Files tried in a requested directory, in order (`--static-index`, repeatable). None given: a static-map
    /// directory goes to the app (as in uWSGI); `--app static:DIR` tries index.html.
    public var index: [String] = []
    /// `REGEX SECONDS` rules matched against the file's real path (`--static-expires`), its request URI
    /// (`--static-expires-uri`), its PATH_INFO (`--static-expires-path-info`); `-mtime` variants count from the
    /// file's modification time instead of now.
    public var expires: [ExpiresRule] = []
    /// `TYPE=SECONDS`: by content type (`--static-expires-type`, `--static-expires-type-mtime`).
    public var expiresByType: [ExpiresTypeRule] = []
    /// Serve FILE.gz to clients accepting gzip, for every file (`--static-gzip-all`) or those matching.
    public var gzipAll = false
    /// Regexes on the file's path (`--static-gzip`).
    public var gzipPatterns: [String] = []
    /// Path prefixes (`--static-gzip-dir`, `--static-gzip-prefix`).
    public var gzipPrefixes: [String] = []
    /// Suffixes (`--static-gzip-ext`, `--static-gzip-suffix`).
    public var gzipSuffixes: [String] = []
    /// Folders a symlink inside DIR may lead to (`--static-safe`).
    public var safe: [String] = []
    /// Files ending so are left to the app (`--static-skip-ext`).
    public var skipExtensions: [String] = []

    public init() {}
}

/// One `static-expires*` rule: a regex on the path, URI or PATH_INFO, and seconds from now or from mtime.
public struct ExpiresRule: Equatable, Sendable {
    public enum Subject: String, Sendable { case file, uri, pathInfo }
    public var subject: Subject
    public var pattern: String
    public var seconds: Int
    public var fromModification: Bool
}

/// One `static-expires-type*` rule: an exact content type (`text/css`) and seconds.
public struct ExpiresTypeRule: Equatable, Sendable {
    public var contentType: String
    public var seconds: Int
    public var fromModification: Bool
}

extension ValueParser where Value == String {
    /// A regular expression (uWSGI's PCRE; swsgi's Swift Regex takes the common syntax).
    static var regex: ValueParser {
        ValueParser { (text: String) throws(ValueProblem) -> String in
            guard !text.isEmpty else { throw ValueProblem("an empty regular expression") }
            do { _ = try Regex(text) } catch { throw ValueProblem("\(quoted(text)) is not a regular expression: \(error)") }
            // Matched against a client's URI: the same exponential backtracking as a route's.
            if LinePattern.nestsRepeats(text) {
                throw ValueProblem("\(quoted(text)) repeats a group that holds a repeat (like (a+)+): Swift's Regex has no match limit (uWSGI's PCRE has), so some paths take exponential time and hold a worker; write it with one level of repetition")
            }
            return text
        }
    }
}

/// uwsgi_str_num: the digits of the value (uWSGI reads `3600` and nothing else here).
private func expiresSeconds(_ text: Substring, in value: String) throws(ValueProblem) -> Int {
    let t = text.trimmingSpaces()
    guard !t.isEmpty, t.count <= 10, t.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(t) else {
        throw ValueProblem("\(quoted(value)): \(quoted(String(t))) is not a number of seconds")
    }
    return n
}

/// `REGEX SECONDS` (split at the first space, as uwsgi_opt_add_regexp_dyn_dict does).
func expiresRow(_ name: String, _ subject: ExpiresRule.Subject, mtime: Bool) -> OptionSpec {
    OptionSpec(name: name, aliases: [], group: "Static files", valueName: "REGEX SECONDS", defaultText: "none",
               help: "Expires header for static files whose \(subject == .file ? "real path" : subject == .uri ? "request URI" : "PATH_INFO") matches, \(mtime ? "file mtime" : "now") + SECONDS (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   guard let space = text.firstIndex(of: " ") else { throw ValueProblem("\(quoted(text)): expected REGEX SECONDS") }
                   let pattern = try ValueParser<String>.regex.parse(String(text[..<space]))
                   let seconds = try expiresSeconds(text[text.index(after: space)...], in: text)
                   o.staticFiles.expires.append(ExpiresRule(subject: subject, pattern: pattern, seconds: seconds, fromModification: mtime))
               },
               isBoolean: false)
}

/// `TYPE=SECONDS` (uwsgi_opt_add_dyn_dict).
func expiresTypeRow(_ name: String, mtime: Bool) -> OptionSpec {
    OptionSpec(name: name, aliases: [], group: "Static files", valueName: "TYPE=SECONDS", defaultText: "none",
               help: "Expires header for static files of this content type, \(mtime ? "file mtime" : "now") + SECONDS (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw ValueProblem("\(quoted(text)): expected TYPE=SECONDS") }
                   let seconds = try expiresSeconds(text[text.index(after: eq)...], in: text)
                   o.staticFiles.expiresByType.append(ExpiresTypeRule(contentType: String(text[..<eq]).lowercased(), seconds: seconds, fromModification: mtime))
               },
               isBoolean: false)
}

/// A repeatable string list under `staticFiles`.
func staticList(_ name: String, _ valueName: String, _ keyPath: WritableKeyPath<StaticFileOptions, [String]> & Sendable,
                parser: ValueParser<String> = .string(), _ help: String, aliases: [String] = []) -> OptionSpec {
    OptionSpec(name: name, aliases: aliases, group: "Static files", valueName: valueName, defaultText: "none", help: help,
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.staticFiles[keyPath: keyPath].append(try parser.parse(text))
               },
               isBoolean: false)
}

let staticOptionRows: [OptionSpec] = [
    staticList("static-index", "FILE", \.index, "file served for a requested directory, tried in order (repeatable)"),
    expiresRow("static-expires", .file, mtime: false),
    expiresRow("static-expires-mtime", .file, mtime: true),
    expiresRow("static-expires-uri", .uri, mtime: false),
    expiresRow("static-expires-uri-mtime", .uri, mtime: true),
    expiresRow("static-expires-path-info", .pathInfo, mtime: false),
    expiresRow("static-expires-path-info-mtime", .pathInfo, mtime: true),
    expiresTypeRow("static-expires-type", mtime: false),
    expiresTypeRow("static-expires-type-mtime", mtime: true),
    OptionSpec(name: "static-gzip-all", aliases: [], group: "Static files", valueName: nil, defaultText: "false",
               help: "serve FILE.gz (Content-Encoding: gzip) when it exists and the client accepts gzip",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.staticFiles.gzipAll = try ValueParser<Bool>.bool.parse(text)
               },
               isBoolean: true),
    staticList("static-gzip", "REGEX", \.gzipPatterns, parser: .regex, "as --static-gzip-all, for files whose path matches (repeatable)"),
    staticList("static-gzip-dir", "PREFIX", \.gzipPrefixes, "as --static-gzip-all, for files under this path (repeatable)",
               aliases: ["static-gzip-prefix"]),
    staticList("static-gzip-ext", "SUFFIX", \.gzipSuffixes, "as --static-gzip-all, for files ending so (repeatable)",
               aliases: ["static-gzip-suffix"]),
    staticList("static-safe", "DIR", \.safe, "a symlink in a static folder may lead into DIR (repeatable)"),
    staticList("static-skip-ext", "EXT", \.skipExtensions, "files ending so are left to the app (repeatable)"),
]
