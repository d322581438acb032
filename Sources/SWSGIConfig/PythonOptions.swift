/// The Python WSGI app and its interpreter (uWSGI's option names): part of `ServerOptions`.
public struct PythonAppOptions: Equatable, Sendable {
    /// libpython to load (`--python-lib`); nil = the one of the interpreter PythonLocator picks.
    public var libraryPath: String? = nil
    /// Virtualenv or Python prefix (`--home`, `--virtualenv`, `--venv`).
    public var home: String? = nil
    /// The interpreter to ask for its libpython, sys.path and site-packages (`--python-executable`):
    /// `python -m swsgi` sets it (SWSGI_PYTHON_EXECUTABLE) to the python that ran it. `--home` wins.
    public var executable: String? = nil
    /// File defining the WSGI callable (`--wsgi-file`).
    public var wsgiFile: String? = nil
    /// `MODULE[:CALLABLE]` to import (`--module`, `--wsgi`).
    public var module: String? = nil
    /// Name of the WSGI callable (`--callable`); `module`'s `:CALLABLE` wins.
    public var callable: String = "application"
    /// Directories put first on sys.path, in order (`--pythonpath`, repeatable).
    public var pythonPath: [String] = []
    /// Directory the master changes to first, before opening or binding anything (`--chdir`).
    public var chdir: String? = nil
    /// Import the app in each worker after fork instead of once in the master (`--lazy-apps`).
    public var lazyApps: Bool = false
    /// An app that fails to import stops swsgi (`--need-app`); only `true` is supported.
    public var needApp: Bool = true
    /// Call PyOS_AfterFork_Child in workers (`--py-call-osafterfork`); only `true` is supported.
    public var callOsAfterFork: Bool = true
    /// uWSGI's `enable-threads`. Threads the app starts always run, also between requests: false is
    /// accepted with a warning (`load` adds it), since uWSGI's false only stops them while a worker is idle.
    public var enableThreads: Bool = true
    /// write() failing (the client gone) returns None instead of raising OSError (`--disable-write-exception`).
    public var disableWriteException: Bool = false
    /// Read the whole body before calling the app, this many bytes in memory and the rest in an
    /// unlinked temporary file; 0 = off, the app reads from the socket (`--post-buffering`).
    public var postBufferingBytes: Int = 0
    /// No wsgi.file_wrapper in the environ (`--wsgi-disable-file-wrapper`).
    public var disableFileWrapper: Bool = false
    /// Request threads per worker (`--threads`): 1 serves in the worker's main thread.
    public var threads: Int = 1
    /// Reload the workers when a module the app imported changes (`--py-autoreload N`, uWSGI's seconds
    /// between scans; swsgi watches with inotify, so any N > 0 just turns it on). 0 = off.
    public var autoReloadSeconds = 0
    /// Modules (by name) whose files py-autoreload leaves alone (`--py-autoreload-ignore`, repeatable).
    public var autoReloadIgnore: [String] = []
    /// The app is imported in each worker after fork: `--lazy-apps`, or `--py-autoreload` (a reload must
    /// import the changed code, and the master's copy of the app would be the old one).
    public var importsAppInWorkers: Bool { lazyApps || autoReloadSeconds > 0 }
    /// sys.executable as the app sees it (`--py-sys-executable`, uWSGI's `py-executable`); nil = the interpreter's.
    public var sysExecutable: String? = nil
    /// Python's optimization level, as `python -O`/`-OO` (`--optimize`); 0 = none.
    public var optimize = 0
    /// sys.argv after its first item, split at spaces and tabs as uWSGI does (`--pyargv`).
    public var pyargv: String? = nil
    /// Modules (or .py files) imported before the app, in each process that loads it (`--import`).
    public var imports: [String] = []
    /// Modules (or .py files) imported once in the master before any fork (`--shared-import`).
    public var sharedImports: [String] = []
    /// A paste.deploy URI (`config:/path/app.ini`, `egg:...`) whose app is served (`--paste`).
    public var paste: String? = nil
    /// The app section loadapp picks in the paste config (`--paste-name`).
    public var pasteName: String? = nil
    /// Configure `logging` from the paste config file first (`--paste-logger`).
    public var pasteLogger = false
    /// pyargv's words.
    public var argv: [String] { (pyargv ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
    /// Apps served under URL prefixes (`--mount POINT=APP`, repeatable), after the `--wsgi-file`/`--module` app.
    public var mounts: [Mount] = []
    /// Pick the app by the longest mount point the path starts with, and move that prefix from
    /// PATH_INFO to SCRIPT_NAME (`--manage-script-name`); without it the request's SCRIPT_NAME picks.
    public var manageScriptName = false
    /// More request threads than this would mostly wait for the GIL: use more processes.
    public static let maxThreads = 256

    public init() {}

    /// A Python app was asked for.
    public var isConfigured: Bool { wsgiFile != nil || module != nil || paste != nil || !mounts.isEmpty }

    /// The module and callable `module` names (`pkg.app:create` or `pkg.app`).
    public var moduleAndCallable: (module: String, callable: String)? {
        guard let module else { return nil }
        if let colon = module.firstIndex(of: ":") {
            return (String(module[..<colon]), String(module[module.index(after: colon)...]))
        }
        return (module, callable)
    }

    func validate() throws(ConfigError) {
        func fail(_ m: String) throws(ConfigError) { throw ConfigError(m) }
        let roots = [(wsgiFile != nil, "--wsgi-file"), (module != nil, "--module"), (paste != nil, "--paste")].filter(\.0).map(\.1)
        if roots.count > 1 { try fail("\(roots.joined(separator: " and ")) all name the app at /: give one") }
        if pasteLogger || pasteName != nil, paste == nil {
            try fail("\(pasteLogger ? "--paste-logger" : "--paste-name") needs --paste config:FILE")
        }
        if let p = paste, !["config:", "egg:", "call:"].contains(where: { p.hasPrefix($0) }) {
            try fail("--paste \(quoted(p)): give a paste.deploy URI, like config:\(p.hasPrefix("/") ? p : "/path/app.ini") (uWSGI hands it to loadapp as it is)")
        }
        if pasteLogger, let p = paste, !p.hasPrefix("config:") {
            try fail("--paste-logger reads the logging sections of a config: file; --paste \(quoted(p)) is not one")
        }
        if threads < 1 || threads > Self.maxThreads {
            try fail("--threads \(threads): give 1 to \(Self.maxThreads) request threads per worker")
        }
        if !needApp { try fail("--need-app false is not supported: swsgi never serves without its app") }
        if !callOsAfterFork {
            try fail("--py-call-osafterfork false is not supported: swsgi always calls PyOS_AfterFork_Child so signals and threads work in workers")
        }
        if let (m, c) = moduleAndCallable {
            if m.isEmpty { try fail("--module \(quoted(module!)): no module before the colon (write MODULE or MODULE:CALLABLE)") }
            if m.utf8.contains(0) || c.utf8.contains(0) { try fail("--module \(quoted(module!)) contains a NUL byte") }
            if c.isEmpty { try fail("--module \(quoted(module!)): no callable after the colon (write MODULE or MODULE:CALLABLE)") }
        }
        if callable.utf8.contains(0) { try fail("--callable \(quoted(callable)) contains a NUL byte") }
        var points: Set<String> = wsgiFile != nil || module != nil || paste != nil ? [""] : []
        for m in mounts {
            // uWSGI would serve only the first app mounted at a point: the second could never answer.
            guard points.insert(m.point).inserted else {
                throw ConfigError("--mount \(quoted(m.text)): another app already serves \(m.point.isEmpty ? "/ (--wsgi-file/--module, or an earlier mount)" : m.point)")
            }
            if case .module(let spec) = m.kind, let colon = spec.firstIndex(of: ":") {
                let (mod, c) = (String(spec[..<colon]), String(spec[spec.index(after: colon)...]))
                if mod.isEmpty || !isDottedName(mod) { try fail("--mount \(quoted(m.text)): \(quoted(mod)) is not a module name like pkg.app") }
                if c.isEmpty { try fail("--mount \(quoted(m.text)): no callable after the colon") }
            }
        }
        if !isConfigured {
            for (given, flag) in [(libraryPath != nil, "--python-lib"), (home != nil, "--home"), (!pythonPath.isEmpty, "--pythonpath"),
                                  (lazyApps, "--lazy-apps"), (chdir != nil, "--chdir"), (manageScriptName, "--manage-script-name"),
                                  (autoReloadSeconds > 0, "--py-autoreload"), (optimize > 0, "--optimize"), (pyargv != nil, "--pyargv"),
                                  (!imports.isEmpty, "--import"), (!sharedImports.isEmpty, "--shared-import")] where given {
                try fail("\(flag) needs a Python app: give --wsgi-file FILE or --module MODULE[:CALLABLE]")
            }
        }
    }
}

extension PythonAppOptions {
    /// Module names and callables that cannot be found: `module = app.wsgi:application //comment`,
    /// `module = mysite.wsgi # comment` (uWSGI's ini has no trailing comments). uWSGI takes any text there
    /// and fails when it loads the app (the import or getattr finds nothing); so does swsgi, and the
    /// configuration stays valid: these lines say in advance what will fail.
    public var appSpecWarnings: [String] {
        var out: [String] = []
        if let (m, _) = moduleAndCallable, !isDottedName(m) {
            out.append("--module \(quoted(module!)): \(quoted(m)) is not a module name like pkg.app: "
                       + "importing it will fail when the app loads, as it does under uWSGI")
        }
        func check(_ c: String, _ what: String) {
            if !isCallableName(c) {
                out.append("\(what): the callable \(quoted(c)) is not a Python identifier (or a factory to call, NAME()): "
                           + "loading the app will fail (no attribute has that name), as it does under uWSGI")
            }
        }
        if let module, let colon = module.firstIndex(of: ":") {
            check(String(module[module.index(after: colon)...]), "--module \(quoted(module))")
        }
        // --callable names the app of --wsgi-file, of a --module without a colon, and of file mounts.
        let usesCallable = wsgiFile != nil || module.map { !$0.contains(":") } ?? false
            || mounts.contains { if case .file = $0.kind { true } else { false } }
        if usesCallable { check(callable, "--callable \(quoted(callable))") }
        for m in mounts {
            if case .module(let spec) = m.kind, let colon = spec.firstIndex(of: ":") {
                check(String(spec[spec.index(after: colon)...]), "--mount \(quoted(m.text))")
            }
        }
        return out
    }
}

/// One `--mount POINT=APP` (uWSGI's): the app and the URL prefix it is served under.
public struct Mount: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A `.py`/`.wsgi` file defining `--callable`.
        case file(String)
        /// `MODULE:CALLABLE`.
        case module(String)
    }
    /// "" for the root, else the prefix without its trailing slash (`/api/` serves as `/api`).
    public let point: String
    public let kind: Kind
    /// As given, for messages.
    public let text: String

    /// uWSGI's python plugin mounts a `.py`/`.wsgi` file or a `MODULE:CALLABLE`; an empty point is `/`.
    init(parsing text: String) throws(ValueProblem) {
        guard let eq = text.firstIndex(of: "=") else { throw ValueProblem("\(quoted(text)): expected MOUNTPOINT=APP, like /api=api.py") }
        var point = String(text[..<eq])
        let app = String(text[text.index(after: eq)...])
        if point.isEmpty { point = "/" }
        guard point.hasPrefix("/") else {
            throw ValueProblem("\(quoted(text)): the mount point must be a URL path starting with / (virtual hosts are not supported)")
        }
        while point.hasSuffix("/") { point.removeLast() }
        self.point = point
        self.text = text
        if app.hasSuffix(".py") || app.hasSuffix(".wsgi") {
            kind = .file(app)
        } else if app.hasPrefix("config:") || app.hasSuffix(".ini") {
            throw ValueProblem("\(quoted(text)): paste.deploy apps are not supported; mount the WSGI callable (FILE.py or MODULE:CALLABLE)")
        } else if app.contains(":") {
            kind = .module(app)
        } else {
            throw ValueProblem("\(quoted(text)): the app must be a .py/.wsgi file or MODULE:CALLABLE (uWSGI mounts nothing else)")
        }
    }
}

private func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
    guard let first = s.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return false }
    return s.unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isXIDContinue }
}

/// `application`, or `create_app()`: a factory called once with no arguments (uWSGI's form).
private func isCallableName(_ s: String) -> Bool {
    s.hasSuffix("()") ? isIdentifier(s.dropLast(2)) : isIdentifier(s)
}

/// A name `importlib.import_module` (what swsgi and uWSGI call) can find: dot-separated non-empty parts.
/// Not only identifiers: a package directory named `Web-SQL-Console` imports that way, though no `import`
/// statement could name it. No spaces, slashes or NUL: those are paths or typos, never module names.
private func isDottedName(_ s: String) -> Bool {
    s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
        !part.isEmpty && !part.contains { $0 == "/" || $0 == "\0" || $0.isWhitespace }
    }
}

private let python = "Python WSGI app (uWSGI names)"

/// The Python rows of the option table.
let pythonOptionRows: [OptionSpec] = [
    option(python, "wsgi-file", "FILE", .string(), \.python.wsgiFile, default: "none",
           "Python file defining the WSGI callable"),
    option(python, "module", "MOD[:CALLABLE]", .string(), \.python.module, default: "none",
           "Python module to import for the WSGI callable", aliases: ["wsgi"]),
    option(python, "callable", "NAME", .string(), \.python.callable, default: "application",
           "name of the WSGI callable"),
    appending(python, "pythonpath", "DIR", \.python.pythonPath,
              "directory put first on sys.path (repeatable)", aliases: ["python-path", "pp"]),
    option(python, "chdir", "DIR", .string(), \.python.chdir, default: "none",
           "change to this directory first (uWSGI's order): relative socket, log, pid and app paths are in it"),
    option(python, "python-lib", "PATH", .string(), \.python.libraryPath, default: "the interpreter's",
           "shared libpython to load"),
    option(python, "home", "DIR", .string(), \.python.home,
           default: "swsgi's own venv, else $VIRTUAL_ENV, else python3",
           "virtualenv (or Python prefix) whose interpreter, sys.path and site-packages the app uses",
           aliases: ["virtualenv", "venv"]),
    option(python, "python-executable", "PATH", .string(), \.python.executable, default: "none; python -m swsgi: that python",
           "Python interpreter whose libpython, sys.path and site-packages the app uses (--home wins)"),
    boolean(python, "lazy-apps", \.python.lazyApps, "import the app in each worker after fork, not once in the master"),
    boolean(python, "need-app", \.python.needApp, "stop when the app fails to import (always on)", defaultText: "true"),
    boolean(python, "py-call-osafterfork", \.python.callOsAfterFork,
            "reset CPython after fork so signal handlers work in workers (always on)", defaultText: "true"),
    boolean(python, "enable-threads", \.python.enableThreads,
            "threads the app starts run, between requests too (false: the same, with a warning)", defaultText: "true"),
    boolean(python, "disable-write-exception", \.python.disableWriteException,
            "write() to a client that went away returns None instead of raising OSError"),
    option(python, "post-buffering", "BYTES", .bytes(0...(1 << 30)), \.python.postBufferingBytes, default: "0 = off",
           "read the whole body before the app runs: BYTES in memory, the rest in a temporary file"),
    boolean(python, "wsgi-disable-file-wrapper", \.python.disableFileWrapper, "leave wsgi.file_wrapper out of the environ"),
    OptionSpec(name: "mount", aliases: [], group: python, valueName: "POINT=APP", defaultText: "none",
               help: "serve APP (FILE.py or MODULE:CALLABLE) under the URL prefix POINT (repeatable)",
               role: .setting { (o: inout ServerOptions, text: String) throws(ValueProblem) in
                   o.python.mounts.append(try Mount(parsing: text))
               }, isBoolean: false),
    boolean(python, "manage-script-name", \.python.manageScriptName,
            "pick the --mount app by the longest prefix of the path; it moves from PATH_INFO to SCRIPT_NAME"),
    option(python, "paste", "URI", .string(), \.python.paste, default: "none",
           "serve the app paste.deploy's loadapp(URI) builds (config:/path/app.ini)"),
    option(python, "paste-name", "NAME", .string(), \.python.pasteName, default: "main",
           "the app section --paste loads"),
    boolean(python, "paste-logger", \.python.pasteLogger, "configure logging from the --paste config file first (logging.config.fileConfig)"),
    option(python, "py-sys-executable", "PATH", .string(), \.python.sysExecutable, default: "the interpreter's",
           "sys.executable as the app sees it (only that: --home picks the interpreter)",
           aliases: ["py-executable"]),
    option(python, "optimize", "N", .int(0...Int(Int32.max)), \.python.optimize, default: "0",
           "Python's optimization level, as python -O (1: no asserts) or -OO (2: no docstrings either)"),
    option(python, "pyargv", "ARGS", .string(), \.python.pyargv, default: "none",
           "sys.argv[1:] for the app: ARGS split at spaces"),
    appending(python, "import", "MODULE|FILE.py", \.python.imports,
              "import a module (or .py file) before the app, where the app is loaded (repeatable)",
              aliases: ["pyimport", "py-import", "python-import"]),
    appending(python, "shared-import", "MODULE|FILE.py", \.python.sharedImports,
              "import a module (or .py file) once in the master, before any worker is forked (repeatable)",
              aliases: ["shared-pyimport", "shared-py-import"]),
    option(python, "py-autoreload", "N", .int(0...Int(Int32.max)), \.python.autoReloadSeconds, default: "0 = off",
           "N > 0: reload the workers when a module the app imported changes (inotify; app imported per worker)",
           aliases: ["python-autoreload", "py-auto-reload"]),
    appending(python, "py-autoreload-ignore", "MODULE", \.python.autoReloadIgnore,
              "a module (by name) whose file --py-autoreload does not watch (repeatable)",
              aliases: ["py-auto-reload-ignore"]),
    option(python, "threads", "N", .int(0...Int.max), \.python.threads, default: "1",
           "request threads per worker (the worker's main thread accepts and reads request heads)"),
]
