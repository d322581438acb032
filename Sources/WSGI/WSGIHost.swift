import CGlibcShim
import Glibc
import Posix
import PythonRuntime
import SWSGI
import SWSGIConfig

/// A Python WSGI app hosted by swsgi: the interpreter starts in the master; the app is imported
/// there before fork (or in each worker with --lazy-apps); each worker serves it through
/// `WSGIWorker`.
public final class WSGIHost: HostedApplication {
    let interpreter: Interpreter
    let options: PythonAppOptions
    /// The support module's namespace (Input, FileWrapper, loaders).
    let support: PyObjectPointer
    /// The WSGI callable, once loaded.
    var app: PyObjectPointer?
    /// harakiri's graceful signal, when harakiri sends one (--harakiri with --harakiri-graceful-timeout).
    let harakiriGracefulSignal: Int32?

    public var description: String {
        let what = options.wsgiFile.map { "--wsgi-file \($0)" }
            ?? options.moduleAndCallable.map { "--module \($0.module):\($0.callable)" } ?? "?"
        let prefix = interpreter.installation.prefix.map { ", sys.prefix \($0)" } ?? ""
        return "Python \(interpreter.version) (\(interpreter.installation.libraryPath)\(prefix)) \(what)\(options.lazyApps ? " (lazy)" : "")"
    }

    /// Starts Python and, unless --lazy-apps, imports the app: any failure (missing library,
    /// traceback at import) throws here, before swsgi binds anything.
    public init(options all: ServerOptions, environment: [String]) throws {
        options = all.python
        harakiriGracefulSignal = all.harakiriNanoseconds > 0 && all.harakiriGracefulTimeoutNanoseconds > 0
            ? all.harakiriGracefulSignal : nil
        // --chdir was done by `SWSGIMain.run` before anything was opened or bound.
        let installation: PythonInstallation
        do {
            installation = try PythonLocator.locate(PythonSelection(libraryPath: options.libraryPath, home: options.home,
                                                                            interpreter: options.executable),
                                                    environment: environment, ownExecutable: ownExecutablePath())
            interpreter = try Interpreter(installation, pythonPath: options.pythonPath)
        } catch {
            throw SWSGIError("\(error)")
        }
        guard let ns = interpreter.evaluate(SupportSource.text, filename: SupportSource.filename) else {
            throw SWSGIError("the WSGI support code failed to load (traceback above)")
        }
        support = ns
        // `import uwsgi` / `uwsgidecorators` work from here on, at the app's import and after.
        // A mule's script missing is an error now, not a mule respawned forever.
        for case .file(let f) in all.mules where access(f, R_OK) != 0 {
            throw SWSGIError("--mule=\(f): \(errnoText(errno))")
        }
        _ = try UwsgiModule.install(interpreter)
        for entry in all.env where call("set_env", entry) == nil {
            interpreter.printError()
            throw SWSGIError("--env \(entry): cannot set it in os.environ")
        }
        if !options.lazyApps {
            try loadApp()
            call("freeze")
        }
        interpreter.releaseGIL()
    }

    /// Imports the app; prints the traceback and throws when it cannot.
    func loadApp() throws {
        let api = interpreter.api
        let loaded: PyObjectPointer?
        // A C-level exit() during the import ends the process with a line and the app-load status.
        ExitGuard.set(ExitCode.appLoadFailed, "swsgi: the app called exit() while loading the app (\(description)): it cannot be served")
        defer { ExitGuard.set(0, nil) }
        // An abort() during the import: one line and the app-load status, not a crash report naming swsgi.
        try AbortGuard.set(ExitCode.appLoadFailed, "swsgi: the app aborted (SIGABRT) while being imported (\(description)): it cannot be served")
        defer { try? AbortGuard.set(0, nil) }
        if let file = options.wsgiFile {
            loaded = call("load_file", file, options.callable, String(options.pythonPath.count))
        } else if let (module, callable) = options.moduleAndCallable {
            loaded = call("load_module", module, callable)
        } else {
            loaded = nil
        }
        guard let loaded, loaded != api.none else {
            interpreter.printError()
            throw SWSGIError("the WSGI app could not be loaded (\(description)): traceback above")
        }
        app = loaded
    }

    /// Calls a support function with string arguments; nil with the Python error pending.
    @discardableResult
    func call(_ name: String, _ args: String...) -> PyObjectPointer? {
        let api = interpreter.api
        guard let key = api.PyUnicode_FromString(name) else { return nil }
        defer { api.Py_DecRef(key) }
        guard let f = dictItem(support, key) else { return nil }
        guard let tuple = api.PyTuple_New(args.count) else { return nil }
        defer { api.Py_DecRef(tuple) }
        for (i, a) in args.enumerated() {
            guard let s = pyString(api, a) else { return nil }
            _ = api.PyTuple_SetItem(tuple, i, s)
        }
        return api.PyObject_CallObject(f, tuple)
    }

    /// `namespace[key]`, borrowed.
    func dictItem(_ dict: PyObjectPointer, _ key: PyObjectPointer) -> PyObjectPointer? {
        // PyDict_GetItem is not worth another symbol: namespaces are read a handful of times.
        let api = interpreter.api
        guard let getitem = api.PyObject_GetAttrString(dict, "get") else { return nil }
        defer { api.Py_DecRef(getitem) }
        guard let tuple = api.PyTuple_New(1) else { return nil }
        defer { api.Py_DecRef(tuple) }
        api.Py_IncRef(key)
        _ = api.PyTuple_SetItem(tuple, 0, key)
        guard let v = api.PyObject_CallObject(getitem, tuple) else { return nil }
        api.Py_DecRef(v)  // the namespace keeps it alive
        return v == api.none ? nil : v
    }

    public func prepareFork() { interpreter.prepareFork() }
    public func parentAfterFork() { interpreter.parentAfterFork() }
    public func childAfterFork() { interpreter.childAfterFork() }

    /// In a worker, holding the GIL since `childAfterFork`: imports a lazy app, builds the worker's
    /// WSGI objects, then releases the GIL for good (requests take it back).
    public func workerApplication(workerID: Int) throws -> Application {
        defer { interpreter.releaseGIL() }
        if app == nil { try loadApp() }
        let worker = try WSGIWorker(interpreter: interpreter, app: app!, support: support, host: self)
        return { request in try worker.handle(request) }
    }
}

/// A Python str from Swift text (UTF-8), new reference.
func pyString(_ api: CPythonAPI, _ s: String) -> PyObjectPointer? {
    var s = s
    return s.withUTF8 { b in b.withMemoryRebound(to: CChar.self) { api.PyUnicode_DecodeUTF8($0.baseAddress, $0.count, "surrogateescape") } }
}

/// A Python str of the bytes read as latin-1 (PEP 3333's "native string"), new reference.
func pyLatin1(_ api: CPythonAPI, _ bytes: UnsafeRawBufferPointer) -> PyObjectPointer? {
    api.PyUnicode_DecodeLatin1(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, nil)
}
