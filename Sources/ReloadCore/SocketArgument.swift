/// Where in a server's command line its Unix socket path stands, so each generation can be started with
/// a private path instead (rewrite mode) and the public path pointed at it once it is ready.
public struct SocketArgument: Equatable, Sendable {
    /// Index in the command (argv) of the word holding the path.
    public let index: Int
    /// What stands before the path in that word: `""`, `"unix:"`, `"--socket="`, `"--bind=unix:"`.
    public let prefix: String
    public let path: String

    /// The same argument with another path (an absolute one, say).
    public func with(path: String) -> SocketArgument { SocketArgument(index: index, prefix: prefix, path: path) }

    /// The command with the path replaced.
    public func rewriting(_ command: [String], to path: String) -> [String] {
        var c = command
        c[index] = prefix + path
        return c
    }

    /// The Unix socket path a server command binds, from the spellings of swsgi, uWSGI and gunicorn:
    /// `--socket PATH`, `-s PATH`, `--http-socket PATH`, `--uwsgi-socket PATH`, `--bind unix:PATH`,
    /// `-b unix:PATH`, their `--flag=value` forms and the attached `-bunix:PATH`, `-sPATH`. A bare name
    /// (`app.sock`) is a path relative to the command's working directory. The first one found; nil for none.
    public static func find(in command: [String]) -> SocketArgument? { findAll(in: command).first }

    /// The folder the command changes to before it binds (`--chdir DIR` of gunicorn and uWSGI, the last
    /// one given): a relative socket path is taken there. Nil when it names none.
    public static func commandChdir(in command: [String]) -> String? {
        var found: String?
        var i = 1
        while i < command.count {
            let word = command[i]
            if word == "--" { break }
            if word == "--chdir", i + 1 < command.count {
                found = command[i + 1]
                i += 1
            } else if word.hasPrefix("--chdir=") {
                found = String(word.dropFirst("--chdir=".count))
            }
            i += 1
        }
        return found.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Every socket path the command names (gunicorn binds each `--bind`; swsgi and uWSGI keep the last).
    public static func findAll(in command: [String]) -> [SocketArgument] {
        var found: [SocketArgument] = []
        var i = 1
        while i < command.count {
            let word = command[i]
            if word == "--" { return found }
            var flag = word
            var valueIndex = i + 1
            var prefix = ""
            var value: String? = i + 1 < command.count ? command[i + 1] : nil
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") {
                flag = String(word[..<eq])
                value = String(word[word.index(after: eq)...])
                valueIndex = i
                prefix = flag + "="
            } else if !word.hasPrefix("--"), word.count > 2, word.hasPrefix("-b") || word.hasPrefix("-s") {
                // The attached short form, as getopt and argparse take it: `-bunix:PATH`, `-sPATH`.
                flag = String(word.prefix(2))
                value = String(word.dropFirst(2))
                valueIndex = i
                prefix = flag
            }
            // Abstract names (@...) have no file to point or guard.
            if let v = value, !v.hasPrefix("@"), !v.hasPrefix("unix:@"), !v.hasPrefix("unix://@") {
                switch flag {
                case "--socket", "-s", "--http-socket", "--uwsgi-socket", "--http11-socket":
                    // A name without a slash is a path too, relative to the command's folder; an address
                    // has a colon (host:port, :port).
                    // `-s` means other things to other programs (python -s, nginx -s reload): there a bare
                    // name must end in .sock to count.
                    let pathLike = flag != "-s" || v.contains("/") || v.hasSuffix(".sock")
                    if pathLike, !v.isEmpty, !v.hasPrefix("-"), !v.contains(":") { found.append(SocketArgument(index: valueIndex, prefix: prefix, path: v)) }
                case "--bind", "-b":
                    // gunicorn reads `unix:` with an optional `//` (`re.split(r'unix:(//)?', ...)`): `unix://app.sock`
                    // is the relative `app.sock`, `unix:///run/g.sock` the absolute `/run/g.sock`.
                    let scheme = v.hasPrefix("unix://") ? "unix://" : "unix:"
                    if v.hasPrefix(scheme), v.count > scheme.count {
                        found.append(SocketArgument(index: valueIndex, prefix: prefix + scheme, path: String(v.dropFirst(scheme.count))))
                    }
                default: break
                }
            }
            i += 1
        }
        return found
    }
}
