import CGlibcShim
import Glibc
import Common
import Posix

/// The embedded CPython interpreter: one per process, started once, kept across fork.
///
/// GIL protocol: the thread that starts the interpreter holds the GIL only while it runs Python
/// (`withGIL`), so threads the app starts run whenever swsgi waits for the network. Around fork
/// the GIL is held and CPython is told (`PyOS_BeforeFork` / `PyOS_AfterFork_*`), which resets its
/// locks, thread states and signal bookkeeping in the child: uWSGI's `py-call-osafterfork`, always on,
/// so an app's `signal.signal` handlers and threads work in workers.
public final class Interpreter {
    public let api: CPythonAPI
    public let installation: PythonInstallation
    /// The main thread state while the GIL is released; nil while it is held.
    private var savedThread: OpaquePointer?
    /// Set in a worker with `--threads` > 1, before its request threads start. In a `Cell`: read on every
    /// request, a stored property would cost an exclusivity check each time.
    private let requestThreadsCell = Cell(RequestThreads?.none)
    public var requestThreads: RequestThreads? { requestThreadsCell.pointer.pointee }
    /// Whether `requestThreads` is set: asked first on hot paths, where reading the reference counts it.
    public var hasRequestThreads: Bool { hasRequestThreadsCell.pointer.pointee }
    private let hasRequestThreadsCell = Cell(false)

    /// From here on `withGIL` takes the calling thread's own saved state (request threads each have one).
    /// Call in the worker's main thread, after `releaseGIL`, before any request thread starts.
    public func enableRequestThreads() throws(PythonLoadError) {
        requestThreadsCell.pointer.pointee = try RequestThreads(api: api)
        hasRequestThreadsCell.pointer.pointee = true
    }

    /// Loads the library and starts Python without its own signal handlers (SIGINT stays swsgi's),
    /// then points `sys.prefix` and `sys.path` at the installation's (a virtualenv's own when chosen)
    /// and routes the app's stdout, line-buffered, to swsgi's log on fd 2.
    /// `optimize`: Python's -O level (uWSGI's `--optimize`); `argv`: what follows sys.argv[0] (`--pyargv`).
    /// `sysExecutable`: sys.executable as the app sees it (uWSGI's `--py-executable`).
    public init(_ installation: PythonInstallation, pythonPath: [String], optimize: Int = 0, argv: [String] = [],
                sysExecutable: String? = nil) throws(PythonLoadError) {
        self.installation = installation
        api = try CPythonAPI(libraryPath: installation.libraryPath)
        if optimize > 0 {
            guard let flag = api.optimizeFlag else {
                throw PythonLoadError("--optimize \(optimize): \(installation.libraryPath) has no Py_OptimizeFlag; set PYTHONOPTIMIZE=\(optimize) in the environment instead")
            }
            flag.pointee = Int32(clamping: optimize)
        }
        api.Py_InitializeEx(0)
        guard api.Py_IsInitialized() != 0 else { throw PythonLoadError("\(installation.libraryPath): Py_InitializeEx failed") }
        var setup = "import sys, io\n"
        if let prefix = installation.prefix {
            setup += "sys.prefix = \(pythonLiteral(prefix))\n"
            setup += "sys.exec_prefix = \(pythonLiteral(installation.execPrefix ?? prefix))\n"
        }
        if let executable = sysExecutable ?? installation.executable { setup += "sys.executable = \(pythonLiteral(executable))\n" }
        if !installation.path.isEmpty {
            setup += "sys.path[:] = [\(installation.path.map(pythonLiteral).joined(separator: ", "))]\n"
        }
        // --pythonpath goes first, in the order given, as uWSGI does.
        for dir in pythonPath.reversed() { setup += "sys.path.insert(0, \(pythonLiteral(dir)))\n" }
        setup += """
            sys.stdout = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), encoding='utf-8', errors='backslashreplace', line_buffering=True)
            sys.argv = ['swsgi'\(argv.map { ", " + pythonLiteral($0) }.joined())]

            """
        if !run(setup, filename: "<swsgi setup>") {
            throw PythonLoadError("Python set-up failed (traceback above)")
        }
    }

    /// Python \(major).\(minor)... as the library reports it.
    public var version: String { String(cString: api.Py_GetVersion()!).split(separator: " ").first.map(String.init) ?? "?" }
    /// Python 3.10 or later: METH_FASTCALL is in the stable ABI.
    public private(set) lazy var hasStableFastCall: Bool = {
        let parts = version.split(separator: ".").prefix(2).compactMap { Int($0) }
        return parts.count == 2 && (parts[0], parts[1]) >= (3, 10)
    }()

    /// Runs module-level source in a fresh namespace; prints the traceback and returns false on error.
    @discardableResult
    public func run(_ source: String, filename: String) -> Bool {
        guard let globals = evaluate(source, filename: filename) else { return false }
        api.Py_DecRef(globals)
        return true
    }

    /// Runs module-level source and returns its namespace (a new reference), or nil after printing the error.
    public func evaluate(_ source: String, filename: String) -> PyObjectPointer? {
        guard let code = api.Py_CompileString(source, filename, swsgi_Py_file_input) else {
            printError()
            return nil
        }
        defer { api.Py_DecRef(code) }
        guard let globals = api.PyDict_New() else { printError(); return nil }
        if let builtins = api.PyImport_ImportModule("builtins") {
            let key = api.PyUnicode_FromString("__builtins__")!
            _ = api.PyDict_SetItem(globals, key, builtins)
            api.Py_DecRef(key)
            api.Py_DecRef(builtins)
        }
        guard let result = api.PyEval_EvalCode(code, globals, globals) else {
            printError()
            api.Py_DecRef(globals)
            return nil
        }
        api.Py_DecRef(result)
        return globals
    }

    /// Prints the pending exception with its traceback to sys.stderr (swsgi's log). Does not set
    /// `sys.last_traceback`, which would keep the failed request's frames alive.
    /// SystemExit is reported, not obeyed: PyErr_PrintEx would exit the process (with status 0 for
    /// `sys.exit()`), which is not an app's call to make inside a server.
    public func printError() {
        guard api.PyErr_Occurred() != nil else { return }
        if api.PyErr_ExceptionMatches(api.excSystemExit) != 0 {
            var type: PyObjectPointer?, value: PyObjectPointer?, traceback: PyObjectPointer?
            api.PyErr_Fetch(&type, &value, &traceback)
            let text = value.flatMap { str($0) } ?? ""
            for o in [type, value, traceback] { if let o { api.Py_DecRef(o) } }
            writeLog("SystemExit(\(text)) raised by the app: ignored, swsgi decides when processes exit")
            return
        }
        api.PyErr_PrintEx(0)
    }

    /// `str(o)` as Swift text; nil (error cleared) when str() fails.
    public func str(_ o: PyObjectPointer) -> String? {
        guard let s = api.PyObject_Str(o) else { api.PyErr_Clear(); return nil }
        defer { api.Py_DecRef(s) }
        return string(s)
    }

    /// A Python str as Swift text (UTF-8); nil when it is not a str or holds a lone surrogate. For text an app
    /// hands over, use `encode`, which says which of the two it is.
    public func string(_ s: PyObjectPointer) -> String? {
        guard let b = api.PyUnicode_AsUTF8String(s) else { api.PyErr_Clear(); return nil }
        defer { api.Py_DecRef(b) }
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        guard api.PyBytes_AsStringAndSize(b, &p, &n) == 0, let p else { api.PyErr_Clear(); return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// The app's str `o` encoded (a new bytes reference), or why it cannot be, with no Python error left set:
    /// not a str at all, or a str with a character the encoding has no bytes for (a lone surrogate from a
    /// surrogateescape file name in UTF-8; anything past U+00FF in latin-1). Every conversion of an app's str
    /// goes through here, so none says "must be a str, not str".
    public func encode(_ o: PyObjectPointer, _ encoding: StrEncoding) -> Result<PyObjectPointer, StrProblem> {
        let encoded = encoding == .utf8 ? api.PyUnicode_AsUTF8String(o) : api.PyUnicode_AsLatin1String(o)
        if let encoded { return .success(encoded) }
        api.PyErr_Clear()
        guard api.PyObject_IsInstance(o, api.strType) == 1 else {
            api.PyErr_Clear()
            return .failure(.notStr(typeName: typeName(o)))
        }
        let (index, codePoint) = firstUnencodable(o, encoding) ?? (0, 0)
        return .failure(.unencodable(encoding, codePoint: codePoint, index: index))
    }

    /// The app's str `o` as Swift text (its UTF-8), or why it is not one (see `encode`).
    public func text(_ o: PyObjectPointer) -> Result<String, StrProblem> {
        encode(o, .utf8).map { b in
            defer { api.Py_DecRef(b) }
            var p: UnsafeMutablePointer<CChar>?
            var n = 0
            guard api.PyBytes_AsStringAndSize(b, &p, &n) == 0, let p else { api.PyErr_Clear(); return "" }
            return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
        }
    }

    /// Raises `problem` in Python as the error it is (see `StrProblem.message`); returns nil for a callback.
    public func raise(_ problem: StrProblem, _ what: String, expected: String = "a str") -> PyObjectPointer? {
        raise(problem.exception(api), problem.message(what, expected: expected))
    }

    /// The first character of str `o` that `encoding` cannot hold, and its index, read from the str's UTF-32
    /// (surrogates passed through as themselves). Runs on the way to an error only.
    private func firstUnencodable(_ o: PyObjectPointer, _ encoding: StrEncoding) -> (Int, UInt32)? {
        guard let wide = api.PyUnicode_AsEncodedString(o, "utf-32-le", "surrogatepass") else { api.PyErr_Clear(); return nil }
        defer { api.Py_DecRef(wide) }
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        guard api.PyBytes_AsStringAndSize(wide, &p, &n) == 0, let p else { api.PyErr_Clear(); return nil }
        let raw = UnsafeRawBufferPointer(start: p, count: n)
        for index in 0..<(n / 4) {
            let c = raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self).littleEndian
            if encoding.refuses(c) { return (index, c) }
        }
        return nil
    }

    /// The name of `o`'s type, for messages.
    public func typeName(_ o: PyObjectPointer) -> String {
        guard let t = api.PyObject_Type(o) else { api.PyErr_Clear(); return "?" }
        defer { api.Py_DecRef(t) }
        guard let n = api.PyObject_GetAttrString(t, "__name__") else { api.PyErr_Clear(); return "?" }
        defer { api.Py_DecRef(n) }
        return string(n) ?? "?"
    }

    /// Raises `type(message)` in Python; returns nil for a callback to hand back.
    public func raise(_ type: PyObjectPointer, _ message: String) -> PyObjectPointer? {
        api.PyErr_SetString(type, message)
        return nil
    }

    /// None, as a new reference.
    public var newNone: PyObjectPointer {
        api.Py_IncRef(api.none)
        return api.none
    }

    /// Runs `body` with the GIL released (a blocking read inside a Python callback).
    @inline(__always)
    public func withoutGIL<T>(_ body: () throws -> T) rethrows -> T {
        let t = api.PyEval_SaveThread()
        defer { api.PyEval_RestoreThread(t) }
        return try body()
    }

    // MARK: GIL

    /// Releases the GIL (after start-up, or in a worker after fork).
    public func releaseGIL() {
        precondition(savedThread == nil, "GIL released twice")
        savedThread = api.PyEval_SaveThread()
    }

    /// Runs `body` holding the GIL. Not re-entrant: callbacks from Python already hold it.
    /// (Released at the end of every call, in a worker's loop too. Keeping it across a batch of ready requests
    /// saved ~290 instructions per request, but then the batch's Swift-only work (static files, a log line blocked
    /// on a full pipe) froze the app's threads for up to seconds, and a uwsgi signal handler run in the batch
    /// released it twice: measured and dropped, 2026-12-07.)
    @inline(__always)
    public func withGIL<T>(_ body: () throws -> T) rethrows -> T {
        // A worker with request threads: each thread keeps its own state (see `RequestThreads`).
        if hasRequestThreads, let threads = requestThreads { return try threads.withGIL(body) }
        guard let t = savedThread else { return try body() }
        savedThread = nil
        api.PyEval_RestoreThread(t)
        defer { savedThread = api.PyEval_SaveThread() }
        return try body()
    }

    /// Runs `body` holding the GIL from a callback of swsgi's own loop (a timer, a signal, a mule message),
    /// which may come while the GIL is held (a handler run inside `uwsgi.mule_get_msg`, which released it
    /// with `withoutGIL`, takes it back here) or not (the worker's loop between requests).
    @inline(__always)
    public func withCallbackGIL<T>(_ body: () throws -> T) rethrows -> T {
        let state = api.PyGILState_Ensure()
        defer { api.PyGILState_Release(state) }
        return try body()
    }

    // MARK: fork

    /// Before fork: take the GIL and CPython's fork locks.
    public func prepareFork() {
        if let t = savedThread {
            savedThread = nil
            api.PyEval_RestoreThread(t)
        }
        api.PyOS_BeforeFork()
    }

    /// In the parent after fork: release CPython's fork locks and the GIL.
    public func parentAfterFork() {
        api.PyOS_AfterFork_Parent()
        savedThread = api.PyEval_SaveThread()
    }

    /// In the child after fork: CPython resets its runtime for the one thread left. The GIL stays held
    /// until the caller releases it (after loading the app, say).
    public func childAfterFork() {
        api.PyOS_AfterFork_Child()
    }
}

/// A Python string literal for any text: every scalar escaped, so no quoting can break out.
public func pythonLiteral(_ s: String) -> String {
    var out = "'"
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "'": out += "\\'"
        case " "..."~": out.unicodeScalars.append(scalar)
        default:
            let hex = String(scalar.value, radix: 16)
            out += "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
        }
    }
    return out + "'"
}

/// One line to swsgi's log (fd 2), timestamped like the master's lines.
func writeLog(_ message: String) {
    writeStderr("swsgi python [pid \(getpid())]: \(message)")
}

/// The encodings swsgi turns an app's str into: UTF-8 (names, paths, keys) and latin-1 (PEP 3333's status and
/// header strings).
public enum StrEncoding: Sendable {
    case utf8, latin1

    public var name: String { self == .utf8 ? "UTF-8" : "latin-1" }

    /// Whether the encoding has no bytes for code point `c`.
    func refuses(_ c: UInt32) -> Bool { self == .utf8 ? (0xD800...0xDFFF).contains(c) : c > 0xFF }
}

/// Why an app's object could not be read as text (`Interpreter.encode`).
public enum StrProblem: Error, Sendable {
    /// Not a str; the name of its type.
    case notStr(typeName: String)
    /// A str with a character the encoding cannot hold: the first one, and its index in the str.
    case unencodable(StrEncoding, codePoint: UInt32, index: Int)

    /// "<what> must be <expected>, not <type>", or "<what> holds a character that is not <encoding>
    /// (U+DCFF at index 1)". `expected`: what the caller takes ("a str", "bytes or str").
    public func message(_ what: String, expected: String = "a str") -> String {
        switch self {
        case .notStr(let type):
            return "\(what) must be \(expected), not \(type)"
        case .unencodable(let encoding, let c, let index):
            let hex = String(c, radix: 16, uppercase: true)
            let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            let surrogate = (0xD800...0xDFFF).contains(c) ? ", a lone surrogate" : ""
            return "\(what) holds a character that is not \(encoding.name) (\(code)\(surrogate) at index \(index))"
        }
    }

    /// TypeError for an object that is not a str; ValueError (UnicodeEncodeError's base) for a str that cannot be encoded.
    public func exception(_ api: CPythonAPI) -> PyObjectPointer {
        if case .notStr = self { return api.excTypeError }
        return api.excValueError
    }
}
