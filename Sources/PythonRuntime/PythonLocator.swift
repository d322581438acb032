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
    /// `--python-executable PATH`: this interpreter (`python -m swsgi` names the python that ran it).
    public var interpreter: String?
    public init(libraryPath: String?, home: String?, interpreter: String? = nil) {
        self.libraryPath = libraryPath
        self.home = home
        self.interpreter = interpreter
    }
}

public enum PythonLocator {
    /// Picks the library: `--python-lib`, else the one of the interpreter `interpreterToAsk` picks.
    /// `ownExecutable` is swsgi's own path (/proc/self/exe). Errors are one line saying how to install
    /// or name a library.
    public static func locate(_ selection: PythonSelection, environment: [String], ownExecutable: String?) throws(PythonLoadError) -> PythonInstallation {
        if let lib = selection.libraryPath, selection.home == nil {
            return PythonInstallation(libraryPath: lib, prefix: nil, execPrefix: nil, executable: nil, path: [])
        }
        let interpreter = try interpreterToAsk(selection, environment: environment, ownExecutable: ownExecutable)
        var found = try ask(interpreter)
        if let lib = selection.libraryPath { found.libraryPath = lib }
        return found
    }

    /// Which interpreter to ask, first match wins:
    /// 1. `--home DIR`'s bin/python3;
    /// 1a. `--python-executable PATH` (set by `python -m swsgi` to the python that ran it: its venv even
    ///    when the executable is installed elsewhere, `--user` or `--prefix`);
    /// 2. the virtualenv swsgi is installed in (its executable in VENV/bin beside VENV/pyvenv.cfg, as
    ///    `pip install swsgi` puts it): `venv/bin/swsgi` needs no activation, as a console script's
    ///    shebang needs none;
    /// 3. the activated virtualenv (`VIRTUAL_ENV`), for a swsgi installed elsewhere;
    /// 4. the python3 beside swsgi's executable (installed into a Python prefix: a pyenv version,
    ///    /usr/local), whose site-packages is where pip put swsgi;
    /// 5. the python3 on PATH.
    static func interpreterToAsk(_ selection: PythonSelection, environment: [String], ownExecutable: String?) throws(PythonLoadError) -> String {
        let howToName = "name one with --python-lib PATH"
        func python(in dir: String) -> String? {
            ["\(dir)/bin/python3", "\(dir)/bin/python"].first { access($0, X_OK) == 0 }
        }
        if let home = selection.home {
            var st = stat()
            guard stat(home, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw PythonLoadError("--home \(home): not a directory (a virtualenv with pyvenv.cfg, or a Python prefix)")
            }
            guard let found = python(in: home) else {
                let kind = access("\(home)/pyvenv.cfg", R_OK) == 0 ? "virtualenv" : "directory"
                throw PythonLoadError("--home \(home): this \(kind) has no bin/python3 to ask for its libpython; \(howToName)")
            }
            return found
        }
        if let interpreter = selection.interpreter, !interpreter.isEmpty {
            guard access(interpreter, X_OK) == 0 else {
                throw PythonLoadError("--python-executable \(interpreter): \(errnoText(errno)) (an interpreter to ask for its libpython); "
                    + "\(howToName)")
            }
            return interpreter
        }
        let binDir = ownExecutable.map(parentDirectory)
        if let binDir, binDir.hasSuffix("/bin") {
            let venv = parentDirectory(binDir)
            if access("\(venv)/pyvenv.cfg", R_OK) == 0, let found = python(in: venv) { return found }
        }
        if let venv = lookup("VIRTUAL_ENV", in: environment), !venv.isEmpty {
            // A stale VIRTUAL_ENV (the venv removed) must not quietly become some other Python.
            guard let found = python(in: venv) else {
                throw PythonLoadError("VIRTUAL_ENV=\(venv) (the activated virtualenv) has no bin/python3: recreate it, "
                    + "deactivate it, or give --home DIR")
            }
            return found
        }
        if let binDir, let found = ([binDir + "/python3", binDir + "/python"] as [String]).first(where: { access($0, X_OK) == 0 }) {
            return found
        }
        switch resolveExecutable("python3", searchPath: lookup("PATH", in: environment)) {
        case .found(let p): return p
        case .notExecutable(let p):
            throw PythonLoadError("python3 at \(p) cannot be run; install Python (apt-get install python3 libpython3.11) or \(howToName)")
        case .notFound:
            throw PythonLoadError("no python3 on PATH to find libpython; install it (apt-get install python3 libpython3.11) or \(howToName)")
        }
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The fields `query` prints before sys.path.
    static let fixedFields = 10

    /// What the interpreter says about itself, NUL-separated: LIBDIR, INSTSONAME, LDLIBRARY, X.Y,
    /// prefix, exec_prefix, executable, Py_ENABLE_SHARED, base_prefix, X.Y.Z, then sys.path.
    static let query = """
        import sys, sysconfig as s, platform
        v = lambda n: str(s.get_config_var(n) or '')
        sys.stdout.write('\\0'.join([v('LIBDIR'), v('INSTSONAME'), v('LDLIBRARY'), '%d.%d' % sys.version_info[:2], \
        sys.prefix, sys.exec_prefix, sys.executable, v('Py_ENABLE_SHARED'), getattr(sys, 'base_prefix', sys.prefix), \
        platform.python_version()] + [p for p in sys.path if p]))
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
        guard status == 0, fields.count >= fixedFields else {
            throw PythonLoadError("\(interpreter) did not answer as a CPython 3 interpreter (exit status \(status >> 8)); name a library with --python-lib PATH")
        }
        let (libdir, soname, ldlibrary, version) = (fields[0], fields[1], fields[2], fields[3])
        let candidates = [soname, ldlibrary].filter { $0.hasSuffix(".so") || $0.contains(".so.") }.map { "\(libdir)/\($0)" }
        guard let library = candidates.first(where: { access($0, R_OK) == 0 }) else {
            throw PythonLoadError(noSharedLibrary(interpreter: interpreter, version: version, libdir: libdir, ldlibrary: ldlibrary,
                                                  candidates: candidates, enableShared: fields[7], basePrefix: fields[8],
                                                  fullVersion: fields[9]))
        }
        return PythonInstallation(libraryPath: library, prefix: fields[4], execPrefix: fields[5], executable: fields[6],
                                  path: Array(fields[fixedFields...]))
    }

    /// The one line for an interpreter without a loadable libpython: what it is, why, and the command
    /// that gives it one (a pyenv version reinstalled with --enable-shared, the distribution's package,
    /// or a source build's configure flag).
    static func noSharedLibrary(interpreter: String, version: String, libdir: String, ldlibrary: String, candidates: [String],
                                enableShared: String, basePrefix: String, fullVersion: String) -> String {
        let what = "\(interpreter) (Python \(fullVersion.isEmpty ? version : fullVersion)\(basePrefix.isEmpty ? "" : " from \(basePrefix)"))"
        let orName = "; or name a library with --python-lib PATH"
        let components = basePrefix.split(separator: "/")
        if components.count >= 2, components[components.count - 2] == "versions", basePrefix.contains("pyenv") {
            let name = components[components.count - 1]
            let why = enableShared == "1" ? "its libpython is missing from \(libdir)" : "it was built without --enable-shared (LDLIBRARY=\(ldlibrary))"
            return "\(what) has no shared libpython: \(why); reinstall it with one: "
                + "env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force \(name)\(orName)"
        }
        if enableShared == "1" {
            let wanted = candidates.first ?? "\(libdir)/libpython\(version).so.1.0"
            return "\(what) has no shared libpython at \(wanted): install it (Debian/Ubuntu: apt-get install libpython\(version); "
                + "Fedora/RHEL: dnf install python3-libs)\(orName)"
        }
        return "\(what) has no shared libpython: it was built without --enable-shared (LDLIBRARY=\(ldlibrary)); "
            + "rebuild it with ./configure --enable-shared, or use a Python that has one\(orName)"
    }

    static func shellQuoted(_ s: String) -> String {
        "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
