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
    /// --py-autoreload's watch over the app's module files, made in each worker once the app is loaded.
    public private(set) var sourceWatch: SourceWatch?
    /// harakiri's graceful signal, when harakiri sends one (--harakiri with --harakiri-graceful-timeout).
    let harakiriGracefulSignal: Int32?

    public var description: String {
        var what = options.wsgiFile.map { "--wsgi-file \($0)" }
            ?? options.moduleAndCallable.map { "--module \($0.module):\($0.callable)" } ?? options.paste.map { "--paste \($0)" } ?? ""
        for m in options.mounts { what += (what.isEmpty ? "" : " ") + "--mount \(m.point.isEmpty ? "/" : m.point)=\(m.text.drop { $0 != "=" }.dropFirst())" }
        let prefix = interpreter.installation.prefix.map { ", sys.prefix \($0)" } ?? ""
        return "Python \(interpreter.version) (\(interpreter.installation.libraryPath)\(prefix)) \(what)\(options.lazyApps ? " (lazy)" : options.autoReloadSeconds > 0 ? " (imported in each worker for py-autoreload)" : "")"
    }

    /// Starts Python and, unless --lazy-apps, imports the app: any failure (missing library,
    /// traceback at import) throws here, before swsgi binds anything.
    public init(options all: ServerOptions, environment: [String]) throws {
        options = all.python
        harakiriGracefulSignal = all.harakiriNanoseconds > 0 && all.harakiriGracefulTimeoutNanoseconds > 0
            ? all.harakiriGracefulSignal : nil
        // --chdir was done by `SWSGIMain.run` before anything was opened or bound.
        let installation: PythonInstallation
        // Under --limit-as each of these steps can run out of address space, and Py_InitializeEx then
        // exits or aborts from inside: the line says so and names the limit, the cause the operator can change.
        let limitMiB = all.process.limitAddressSpaceMiB
        let limitHint = limitMiB > 0 ? " (under --limit-as \(limitMiB) MiB: too low for Python? raise it)" : ""
        ExitGuard.set(ExitCode.failure, "swsgi: Python exited while starting\(limitHint)")
        defer { ExitGuard.set(0, nil) }
        try CrashGuard.set(ExitCode.failure, abortLine: "swsgi: Python aborted while starting\(limitHint)",
                           faultLine: { "swsgi: Python crashed (\($0)) while starting\(limitHint)" })
        defer { try? CrashGuard.set(0, abortLine: nil, faultLine: { _ in "" }) }
        do {
            installation = try PythonLocator.locate(PythonSelection(libraryPath: options.libraryPath, home: options.home,
                                                                            interpreter: options.executable),
                                                    environment: environment, ownExecutable: ownExecutablePath())
            interpreter = try Interpreter(installation, pythonPath: options.pythonPath, optimize: options.optimize, argv: options.argv,
                                      sysExecutable: options.sysExecutable)
        } catch {
            throw SWSGIError("\(error)")
        }
        guard let ns = interpreter.evaluate(SupportSource.text, filename: SupportSource.filename) else {
            throw SWSGIError("the WSGI support code failed to load (traceback above)")
        }
        support = ns
        try installImportEnd()
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
        // Before anything the app imports can take a reference to os._exit (`from os import _exit`).
        if call("guard_master_exit") == nil { interpreter.printError() }
        // --shared-import: once, in the master, before any fork (uWSGI's preinit), whatever --lazy-apps says.
        for spec in options.sharedImports where call("import_one", spec) == nil {
            interpreter.printError()
            throw SWSGIError("--shared-import \(spec): the import failed (traceback above)")
        }
        if !options.mounts.isEmpty, !options.manageScriptName, options.wsgiFile == nil, options.module == nil, options.paste == nil,
           !options.mounts.contains(where: { $0.point.isEmpty }) {
            ServerLog.line("warning: no app is mounted at / and manage-script-name is off: only a request whose SCRIPT_NAME (set by the proxy) names a mount point reaches an app; the others get 500, as under uWSGI")
        }
        if !options.importsAppInWorkers {
            try loadApp()
            call("freeze")
        }
        interpreter.releaseGIL()
    }

    /// The support code's `end_import()` and `app_description`: os._exit from a thread other than the one
    /// importing the app cannot be refused with an exception (it would end only that thread, and the
    /// import would go on as if the app had not asked to stop), so the support code writes its line and
    /// calls this, which ends the process as exit() at import does: temporary socket name removed, the
    /// app-load status.
    private func installImportEnd() throws {
        let api = interpreter.api
        let def = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
        def.initialize(to: PyMethodDef(ml_name: strdup("end_import"), ml_meth: { _, _ in
            StartupCleanup.removeNow()
            _exit(ExitCode.appLoadFailed)
        }, ml_flags: swsgi_METH_NOARGS, ml_doc: nil))
        guard let f = api.PyCFunction_NewEx(def, nil, nil) else { throw SWSGIError("cannot create the support code's end_import") }
        defer { api.Py_DecRef(f) }
        guard let what = pyString(api, description) else { throw SWSGIError("cannot create the support code's app_description") }
        defer { api.Py_DecRef(what) }
        for (name, value) in [("end_import", f), ("app_description", what)] {
            guard let key = pyString(api, name) else { throw SWSGIError("cannot set the support code's \(name)") }
            defer { api.Py_DecRef(key) }
            guard api.PyDict_SetItem(support, key, value) == 0 else {
                interpreter.printError()
                throw SWSGIError("cannot set the support code's \(name)")
            }
        }
    }

    /// Imports the app; prints the traceback and throws when it cannot.
    func loadApp() throws {
        let api = interpreter.api
        let loaded: PyObjectPointer?
        // A C-level exit() during the import ends the process with a line and the app-load status.
        ExitGuard.set(ExitCode.appLoadFailed, "swsgi: the app called exit() while loading the app (\(description)): it cannot be served")
        defer { ExitGuard.set(0, nil) }
        // An abort() during the import: one line and the app-load status, not a crash report naming swsgi;
        // a fault: one line, and the signal's own status.
        let what = description
        try CrashGuard.set(ExitCode.appLoadFailed, abortLine: "swsgi: the app aborted (SIGABRT) while being imported (\(what)): it cannot be served",
                           faultLine: { "swsgi: the app crashed (\($0)) while being imported (\(what)): it cannot be served" })
        defer { try? CrashGuard.set(0, abortLine: nil, faultLine: { _ in "" }) }
        // --import: where the app is loaded (the master, or each worker), just before it (uWSGI's init_apps).
        for spec in options.imports where call("import_one", spec) == nil {
            interpreter.printError()
            throw SWSGIError("--import \(spec): the import failed (traceback above)")
        }
        // Each a new reference, handed on below.
        var apps: [(point: String, app: PyObjectPointer)] = []
        if let file = options.wsgiFile {
            loaded = call("load_file", file, options.callable, String(options.pythonPath.count))
        } else if let (module, callable) = options.moduleAndCallable {
            loaded = call("load_module", module, callable)
        } else if let paste = options.paste {
            loaded = call("load_paste", paste, options.pasteName ?? "", options.pasteLogger ? "1" : "")
        } else {
            loaded = options.mounts.isEmpty ? nil : api.none
        }
        guard let loaded, loaded != api.none || !options.mounts.isEmpty else {
            interpreter.printError()
            throw SWSGIError("the WSGI app could not be loaded (\(description)): traceback above")
        }
        if loaded != api.none { apps.append(("", loaded)) }
        // --mount: each app after the main one, in the order given (uWSGI's load order).
        for m in options.mounts {
            let one: PyObjectPointer?
            switch m.kind {
            case .file(let f): one = call("load_file", f, options.callable, String(options.pythonPath.count))
            case .module(let spec):
                let colon = spec.firstIndex(of: ":")!
                one = call("load_module", String(spec[..<colon]), String(spec[spec.index(after: colon)...]))
            }
            guard let one, one != api.none else {
                interpreter.printError()
                throw SWSGIError("--mount \(m.text): the WSGI app could not be loaded: traceback above")
            }
            apps.append((m.point, one))
        }
        // One app at the root is called directly; apps under prefixes go through the dispatcher.
        if apps.allSatisfy({ $0.point.isEmpty }) {
            app = apps[0].app
            return
        }
        guard let list = api.PyList_New(apps.count), let manage = api.PyBool_FromLong(options.manageScriptName ? 1 : 0) else {
            throw SWSGIError("cannot build the mount table")
        }
        defer { api.Py_DecRef(list); api.Py_DecRef(manage) }
        for (i, a) in apps.enumerated() {
            guard let pair = api.PyTuple_New(2), let point = pyString(api, a.point) else { throw SWSGIError("cannot build the mount table") }
            _ = api.PyTuple_SetItem(pair, 0, point)
            _ = api.PyTuple_SetItem(pair, 1, a.app)  // steals the load's reference
            _ = api.PyList_SetItem(list, i, pair)
        }
        guard let dispatch = callObjects("mount_dispatcher", list, manage) else {
            interpreter.printError()
            throw SWSGIError("cannot build the mount table (traceback above)")
        }
        app = dispatch
    }

    /// --py-autoreload, in a worker holding the GIL with the app loaded: watch the files of every module
    /// imported so far.
    func watchSources() throws {
        guard options.autoReloadSeconds > 0 else { return }
        if sourceWatch == nil {
            let py = interpreter
            let files: ChangeWatch
            do { files = try ChangeWatch(label: "py-autoreload") } catch {
                // Out of inotify instances (fs.inotify.max_user_instances): serve, unwatched, rather than not at all.
                ServerLog.line("py-autoreload: \(error); this worker does not watch the app's modules")
                return
            }
            sourceWatch = SourceWatch(files: files) { [unowned self] file in
                // From the worker's loop, between requests or beside the request threads.
                py.withCallbackGIL {
                    guard let r = self.call("source_problem", file) else { py.api.PyErr_Clear(); return nil }
                    defer { py.api.Py_DecRef(r) }
                    return r == py.api.none ? nil : py.string(r)
                }
            }
        }
        refreshSources()
    }

    /// With the GIL held (after each request too: apps import lazily): adds the files of modules imported
    /// since the last look. The support code answers None while `len(sys.modules)` is unchanged.
    func refreshSources() {
        let api = interpreter.api
        guard let watch = sourceWatch?.files, api.PyErr_Occurred() == nil else { return }
        guard let ignore = api.PyList_New(options.autoReloadIgnore.count) else { api.PyErr_Clear(); return }
        defer { api.Py_DecRef(ignore) }
        for (i, name) in options.autoReloadIgnore.enumerated() {
            guard let s = pyString(api, name) else { api.PyErr_Clear(); return }
            _ = api.PyList_SetItem(ignore, i, s)
        }
        guard let files = callObjects("module_files", ignore) else { interpreter.printError(); return }
        defer { api.Py_DecRef(files) }
        guard files != api.none else { return }
        var paths: [String] = []
        for i in 0..<max(0, api.PyList_Size(files)) {
            if let item = api.PyList_GetItem(files, i), let path = interpreter.string(item) { paths.append(path) }
        }
        watch.add(paths)
    }

    /// Calls a support function with object arguments (borrowed); nil with the Python error pending.
    func callObjects(_ name: String, _ args: PyObjectPointer...) -> PyObjectPointer? {
        let api = interpreter.api
        guard let key = api.PyUnicode_FromString(name) else { return nil }
        defer { api.Py_DecRef(key) }
        guard let f = dictItem(support, key), let tuple = api.PyTuple_New(args.count) else { return nil }
        defer { api.Py_DecRef(tuple) }
        for (i, a) in args.enumerated() {
            api.Py_IncRef(a)
            _ = api.PyTuple_SetItem(tuple, i, a)
        }
        return api.PyObject_CallObject(f, tuple)
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

    /// The app's exit handlers, once (the support code's `run_exit_handlers`): what flushes at exit (logging,
    /// telemetry exporters) must not be lost at every reload.
    public func workerExiting() {
        let api = interpreter.api
        interpreter.withCallbackGIL {
            guard let k = pyString(api, "run_exit_handlers") else { return }
            defer { api.Py_DecRef(k) }
            guard let f = dictItem(support, k), let r = api.PyObject_CallObject(f, nil) else { interpreter.printError(); return }
            api.Py_DecRef(r)
        }
    }

    public func prepareFork() { interpreter.prepareFork() }
    public func parentAfterFork() { interpreter.parentAfterFork() }
    public func childAfterFork() { interpreter.childAfterFork() }

    /// In a worker, holding the GIL since `childAfterFork`: imports a lazy app, builds the worker's
    /// WSGI objects, then releases the GIL for good (requests take it back).
    public func workerApplication(workerID: Int) throws -> Application {
        defer { interpreter.releaseGIL() }
        if app == nil { try loadApp() }
        try watchSources()
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
