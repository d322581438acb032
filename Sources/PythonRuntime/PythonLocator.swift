import Glibc
import Posix

/// Which libpython to load and the interpreter paths that go with it.
public struct PythonInstallation: Sendable, Equatable {
    /// The shared library to dlopen.
    public var libraryPath: String
    /// What the interpreter at `executable` reports as `sys.prefix`, `sys.exec_prefix` and `sys.path`
    /// (a virtualenv's own when `--home` names one); nil when only `--python-lib` was given, where
    /// the library's built-in defaults stand.
    public var prefix: String?
    public var execPrefix: String?
    public var executable: String?
    public var path: [String]
}

/// Where the Python configuration comes from: uWSGI's option names.
public struct PythonSelection: Sendable, Equatable {
    /// `--python-lib PATH`: this library, nothing asked of any interpreter.
    public var libraryPath: String?
    /// `--home` / `--virtualenv` / `--venv DIR`: a virtualenv (with `pyvenv.cfg`) or a Python prefix.
    public var home: String?
    public init(libraryPath: String?, home: String?) {
        self.libraryPath = libraryPath
        self.home = home
    }
}

public enum PythonLocator {
    /// Picks the library: `--python-lib`, else the one of `--home`'s interpreter, else the `python3`
    /// found on `PATH`. Errors are one line saying how to install or name a library.
    public static func locate(_ selection: PythonSelection, environment: [String]) throws(PythonLoadError) -> PythonInstallation {
        let howToName = "name one with --python-lib PATH"
        var interpreter: String
        if let home = selection.home {
            var st = stat()
            guard stat(home, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw PythonLoadError("--home \(home): not a directory (a virtualenv with pyvenv.cfg, or a Python prefix)")
            }
            let candidates = ["\(home)/bin/python3", "\(home)/bin/python"]
            guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
                let kind = access("\(home)/pyvenv.cfg", R_OK) == 0 ? "virtualenv" : "directory"
                throw PythonLoadError("--home \(home): this \(kind) has no bin/python3 to ask for its libpython; \(howToName)")
            }
            interpreter = found
        } else if selection.libraryPath != nil {
            interpreter = ""
        } else {
            switch resolveExecutable("python3", searchPath: lookup("PATH", in: environment)) {
            case .found(let p): interpreter = p
            case .notExecutable(let p):
                throw PythonLoadError("python3 at \(p) cannot be run; install Python (apt-get install python3 libpython3.11) or \(howToName)")
            case .notFound:
                throw PythonLoadError("no python3 on PATH to find libpython; install it (apt-get install python3 libpython3.11) or \(howToName)")
            }
        }
        if let lib = selection.libraryPath {
            guard !interpreter.isEmpty else {
                return PythonInstallation(libraryPath: lib, prefix: nil, execPrefix: nil, executable: nil, path: [])
            }
            var found = try ask(interpreter)
            found.libraryPath = lib
            return found
        }
        return try ask(interpreter)
    }

    /// What the interpreter says about itself, NUL-separated: LIBDIR, INSTSONAME, LDLIBRARY,
    /// version, prefix, exec_prefix, executable, then sys.path.
    static let query = """
        import sys, sysconfig as s
        v = lambda n: s.get_config_var(n) or ''
        sys.stdout.write('\\0'.join([v('LIBDIR'), v('INSTSONAME'), v('LDLIBRARY'), '%d.%d' % sys.version_info[:2], \
        sys.prefix, sys.exec_prefix, sys.executable] + [p for p in sys.path if p]))
        """

    static func ask(_ interpreter: String) throws(PythonLoadError) -> PythonInstallation {
        let command = "\(shellQuoted(interpreter)) -c \(shellQuoted(query)) 2>/dev/null"
        guard let pipe = popen(command, "re") else {
            throw PythonLoadError("cannot run \(interpreter): \(errnoText(errno))")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, pipe) }
            if n == 0 { break }
            output += buffer[0..<n]
        }
        let status = pclose(pipe)
        let fields = output.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard status == 0, fields.count >= 7 else {
            throw PythonLoadError("\(interpreter) did not answer as a CPython 3 interpreter (exit status \(status >> 8)); name a library with --python-lib PATH")
        }
        let (libdir, soname, ldlibrary, version) = (fields[0], fields[1], fields[2], fields[3])
        let candidates = [soname, ldlibrary].filter { $0.hasSuffix(".so") || $0.contains(".so.") }.map { "\(libdir)/\($0)" }
        guard let library = candidates.first(where: { access($0, R_OK) == 0 }) else {
            let wanted = candidates.first ?? "\(libdir)/libpython\(version).so.1.0"
            throw PythonLoadError("\(interpreter) (Python \(version)) has no shared libpython at \(wanted): install it "
                + "(Debian: apt-get install libpython\(version); pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install) "
                + "or name one with --python-lib PATH")
        }
        return PythonInstallation(libraryPath: library, prefix: fields[4], execPrefix: fields[5], executable: fields[6],
                                  path: Array(fields[7...]))
    }

    static func shellQuoted(_ s: String) -> String {
        "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
