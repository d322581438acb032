import CGlibcShim
import Glibc
import Posix
import PythonRuntime
import SWSGI

/// The `uwsgi` module's builtins: each one takes positional arguments of fixed types (the Python half in
/// `UwsgiModuleSource` normalises keywords, defaults and str/bytes) and calls the services through
/// `UWSGIBinding`. A Swift error becomes a Python exception (`uwsgi.CacheError`, a ValueError, for what
/// a cache refuses; `uwsgi.ServicesError`, a RuntimeError, for the rest): nothing fails silently.
///
/// GIL: builtins run holding it and release it around anything that waits (lock, mule_msg, mule_get_msg).
/// Python code run from swsgi's own loop (signal handlers, timers, mule messages, post-fork hooks) takes
/// it with `PyGILState_Ensure`, which works both from the worker's loop (GIL released) and from inside
/// `mule_get_msg` (GIL released by this thread around the wait).
final class UwsgiModule {
    let py: Interpreter
    let api: CPythonAPI
    /// The module object (kept for the process's life, as is `sys.modules['uwsgi']`).
    private(set) var module: PyObjectPointer?
    private var cacheErrorType: PyObjectPointer?
    private var servicesErrorType: PyObjectPointer?
    /// The last cache named by a str object (held, so its address stays its own) and the default cache:
    /// an app names the same cache with the same literal, so most calls skip the name's conversion.
    private var lastCacheName: PyObjectPointer?
    private var lastCache: UWSGICacheHandle?
    private var defaultCache: UWSGICacheHandle?

    /// The one instance the C callbacks reach (set once, in the master, before any fork).
    nonisolated(unsafe) static var current: UwsgiModule?

    /// Builds `uwsgi` and `uwsgidecorators` into `sys.modules` (before the app is imported), and tells the
    /// services how to run Python in mules.
    static func install(_ py: Interpreter) throws -> UwsgiModule {
        let m = UwsgiModule(py)
        current = m
        try m.build()
        m.hookServices()
        return m
    }

    private init(_ py: Interpreter) {
        self.py = py
        api = py.api
    }

    // MARK: building the module

    private func build() throws {
        guard let native = api.PyDict_New() else { throw SWSGIError("uwsgi module: cannot create its namespace") }
        defer { api.Py_DecRef(native) }
        for (name, flags, body) in Self.builtins {
            let def = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
            def.initialize(to: PyMethodDef(ml_name: strdup(name), ml_meth: body, ml_flags: flags, ml_doc: nil))
            guard let f = api.PyCFunction_NewEx(def, nil, nil), let key = pyString(api, name) else {
                throw SWSGIError("uwsgi module: cannot create \(name)")
            }
            _ = api.PyDict_SetItem(native, key, f)
            api.Py_DecRef(key)
            api.Py_DecRef(f)
        }
        guard let ns = py.evaluate(UwsgiModuleSource.bootstrap, filename: "<swsgi uwsgi bootstrap>") else {
            throw SWSGIError("the uwsgi module's bootstrap failed (traceback above)")
        }
        defer { api.Py_DecRef(ns) }
        guard let install = api.PyObject_GetAttrString(ns, "get").flatMap({ get -> PyObjectPointer? in
            defer { api.Py_DecRef(get) }
            return call(get, [pyString(api, "install")])
        }) else { throw SWSGIError("uwsgi module: no install function") }
        defer { api.Py_DecRef(install) }
        api.Py_IncRef(native)
        guard let m = call(install, [native, pyString(api, UwsgiModuleSource.uwsgi), pyString(api, UwsgiModuleSource.decorators)]) else {
            py.printError()
            throw SWSGIError("the uwsgi module failed to load (traceback above)")
        }
        module = m
        cacheErrorType = api.PyObject_GetAttrString(m, "CacheError")
        servicesErrorType = api.PyObject_GetAttrString(m, "ServicesError")
        api.PyErr_Clear()
    }

    /// `f(*args)`, stealing the argument references; nil with the Python error pending.
    func call(_ f: PyObjectPointer, _ args: [PyObjectPointer?]) -> PyObjectPointer? {
        guard args.allSatisfy({ $0 != nil }), let tuple = api.PyTuple_New(args.count) else {
            for a in args { if let a { api.Py_DecRef(a) } }
            return nil
        }
        defer { api.Py_DecRef(tuple) }
        for (i, a) in args.enumerated() { _ = api.PyTuple_SetItem(tuple, i, a) }
        return api.PyObject_CallObject(f, tuple)
    }

    /// Calls `f(*args)` from swsgi's loop: takes the GIL, logs a traceback if it raises. False on error.
    @discardableResult
    func callback(_ f: PyObjectPointer, _ makeArgs: () -> [PyObjectPointer?]) -> Bool {
        py.withCallbackGIL {
            guard let r = call(f, makeArgs()) else {
                py.printError()
                return false
            }
            api.Py_DecRef(r)
            return true
        }
    }

    /// An attribute of the module (a new reference; call holding the GIL), e.g. the hooks the app sets.
    func moduleFunction(_ name: String) -> PyObjectPointer? {
        guard let module, let f = api.PyObject_GetAttrString(module, name) else { api.PyErr_Clear(); return nil }
        return f
    }

    // MARK: services -> Python

    /// Mules run Python: `--mule=FILE` executes FILE as `__main__`; the default `--mule` hands each message
    /// to `uwsgi.mule_msg_hook` (which uwsgidecorators' @mulefunc sets). Around each mule fork the
    /// interpreter is told, as around a worker's.
    private func hookServices() {
        let py = self.py
        UWSGIBinding.setMuleForkHooks(
            prepare: { py.prepareFork() },
            parent: { py.parentAfterFork() },
            // The mule's loop waits without the GIL, so threads the app started run.
            child: { py.childAfterFork(); py.releaseGIL() })
        UWSGIBinding.setMuleFileRunner { [unowned self] path in self.runMuleFile(path) }
        UWSGIBinding.setMuleMessageHandler { [unowned self] message in
            self.py.withCallbackGIL {
                guard let f = self.moduleFunction("_mule_message") else { return }
                defer { self.api.Py_DecRef(f) }
                self.callback(f) { [self.bytes(message)] }
            }
        }
    }

    private func runMuleFile(_ path: String) {
        let ok: Bool = py.withCallbackGIL {
            guard let runpy = api.PyImport_ImportModule("runpy"), let runPath = api.PyObject_GetAttrString(runpy, "run_path") else {
                py.printError()
                return false
            }
            defer { api.Py_DecRef(runpy); api.Py_DecRef(runPath) }
            guard let r = call(runPath, [pyString(api, path), api.PyDict_New(), pyString(api, "__main__")]) else {
                // sys.exit() ends the mule's script: the mule exits like when the script returns.
                if api.PyErr_ExceptionMatches(api.excSystemExit) != 0 { api.PyErr_Clear(); return true }
                py.printError()
                return false
            }
            api.Py_DecRef(r)
            return true
        }
        if !ok {
            writeStderr("swsgi mule \(UWSGIBinding.muleID): --mule=\(path) raised (traceback above); the mule exits and is respawned")
            exit(1)
        }
    }

    // MARK: conversions

    struct Raised: Error {}

    func bytes(_ b: [UInt8]) -> PyObjectPointer? {
        b.withUnsafeBytes { api.PyBytes_FromStringAndSize($0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
    }

    func bool(_ b: Bool) -> PyObjectPointer? { api.PyBool_FromLong(b ? 1 : 0) }

    func int(_ n: Int) -> PyObjectPointer? { api.PyLong_FromLong(n) }

    /// The positional arguments of a builtin.
    struct Args {
        let m: UwsgiModule
        let tuple: PyObjectPointer?

        var count: Int { tuple.map { m.api.PyTuple_Size($0) } ?? 0 }

        /// Argument `i`, which the caller knows exists (borrowed).
        func raw(_ i: Int) -> PyObjectPointer { m.api.PyTuple_GetItem(tuple!, i)! }

        func arity(_ range: ClosedRange<Int>, _ signature: String) throws(Raised) {
            guard range.contains(count) else {
                _ = m.py.raise(m.api.excTypeError, "\(signature) takes \(range.lowerBound) to \(range.upperBound) arguments (\(count) given)")
                throw Raised()
            }
        }

        func item(_ i: Int) throws(Raised) -> PyObjectPointer {
            guard let tuple, i < m.api.PyTuple_Size(tuple), let o = m.api.PyTuple_GetItem(tuple, i) else {
                _ = m.py.raise(m.api.excTypeError, "missing argument \(i + 1)")
                throw Raised()
            }
            return o
        }

        func bytes(_ i: Int) throws(Raised) -> [UInt8] {
            let o = try item(i)
            var p: UnsafeMutablePointer<CChar>?
            var n = 0
            guard m.api.PyObject_IsInstance(o, m.api.bytesType) == 1, m.api.PyBytes_AsStringAndSize(o, &p, &n) == 0 else {
                m.api.PyErr_Clear()
                _ = m.py.raise(m.api.excTypeError, "argument \(i + 1) must be bytes, not \(m.py.typeName(o))")
                throw Raised()
            }
            return Array(UnsafeRawBufferPointer(start: p, count: n))
        }

        func int(_ i: Int) throws(Raised) -> Int {
            let n = m.api.PyLong_AsSsize_t(try item(i))
            if n == -1, m.api.PyErr_Occurred() != nil { throw Raised() }
            return n
        }

        func bool(_ i: Int) throws(Raised) -> Bool {
            let r = m.api.PyObject_IsTrue(try item(i))
            if r < 0 { throw Raised() }
            return r == 1
        }

        /// A str, or nil for None.
        func string(_ i: Int) throws(Raised) -> String? {
            let o = try item(i)
            if o == m.api.none { return nil }
            switch m.py.text(o) {
            case .success(let s): return s
            case .failure(let problem):
                _ = m.py.raise(problem, "argument \(i + 1)")
                throw Raised()
            }
        }
    }

    /// Runs a builtin's body; a Swift error becomes the matching Python exception.
    static func native(_ args: PyObjectPointer?, _ body: (UwsgiModule, Args) throws -> PyObjectPointer?) -> PyObjectPointer? {
        guard let m = current else { return nil }
        do {
            return try body(m, Args(m: m, tuple: args))
        } catch is Raised {
            return nil
        } catch let e as CacheError {
            return m.py.raise(m.cacheErrorType ?? m.api.excValueError, "\(e)")
        } catch {
            return m.py.raise(m.servicesErrorType ?? m.api.excRuntimeError, "\(error)")
        }
    }

    /// `count * unit` nanoseconds, refused when not a positive interval that fits.
    static func nanoseconds(_ count: Int, unitMilliseconds: Int) throws -> UInt64 {
        let perUnit = UInt64(unitMilliseconds) * 1_000_000
        guard count > 0, case let (ns, false) = UInt64(count).multipliedReportingOverflow(by: perUnit), ns < 1 << 62 else {
            throw SWSGIError("timer: \(count) \(unitMilliseconds == 1 ? "ms" : "s") is not a positive interval swsgi can keep")
        }
        return ns
    }

    // MARK: cache fast path (uWSGI's positional signatures, no Python wrapper)

    /// The cache named by argument `i` (absent, None or '' = the first --cache2).
    func cache(_ a: Args, _ i: Int) throws -> UWSGICacheHandle {
        let n = a.count
        if i >= n || a.raw(i) == api.none {
            if let d = defaultCache { return d }
            let d = try UWSGIBinding.cacheHandle(nil)
            defaultCache = d
            return d
        }
        let o = a.raw(i)
        if o == lastCacheName, let c = lastCache { return c }
        guard let name = try a.string(i) else { throw Raised() }
        if name.isEmpty { return try cache(Args(m: self, tuple: nil), 0) }
        // uWSGI's name@server addresses a remote cache: swsgi's caches are local.
        if name.contains("@") { throw SWSGIError("cache '\(name)': remote caches (name@server) are not supported by swsgi") }
        let c = try UWSGIBinding.cacheHandle(name)
        if let old = lastCacheName { api.Py_DecRef(old) }
        api.Py_IncRef(o)
        lastCacheName = o
        lastCache = c
        return c
    }

    /// Argument `i` (bytes in place, or str as UTF-8) as a buffer for `body`.
    func withBuffer<T>(_ a: Args, _ i: Int, _ what: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let o = try a.item(i)
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        if api.PyObject_IsInstance(o, api.bytesType) == 1 {
            guard api.PyBytes_AsStringAndSize(o, &p, &n) == 0 else { throw Raised() }
            return try body(UnsafeRawBufferPointer(start: p, count: n))
        }
        let b: PyObjectPointer
        switch py.encode(o, .utf8) {
        case .success(let encoded): b = encoded
        case .failure(let problem):
            _ = py.raise(problem, what, expected: "bytes or str")
            throw Raised()
        }
        defer { api.Py_DecRef(b) }
        guard api.PyBytes_AsStringAndSize(b, &p, &n) == 0 else { throw Raised() }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// True or None, as uWSGI answers.
    func trueOrNone(_ b: Bool) -> PyObjectPointer? { b ? bool(true) : py.newNone }

    func optionalInt(_ a: Args, _ i: Int, default d: Int) throws -> Int {
        i < a.count && a.raw(i) != api.none ? try a.int(i) : d
    }

    /// cache_set / cache_update (key, value[, expires, cache]).
    static func cacheStore(_ a: PyObjectPointer?, replace: Bool) -> PyObjectPointer? {
        native(a) { m, a in
            try a.arity(2...4, "cache_\(replace ? "update" : "set")(key, value[, expires, cache])")
            let expires = try m.optionalInt(a, 2, default: 0)
            let c = try m.cache(a, 3)
            let stored = try m.withBuffer(a, 0, "key") { k in
                try m.withBuffer(a, 1, "value") { v in try c.set(k, v, expires: expires, replace: replace) }
            }
            return m.trueOrNone(stored)
        }
    }

    /// cache_inc / cache_dec (key[, amount, expires, cache]): the new value.
    static func cacheCount(_ a: PyObjectPointer?, sign: Int) -> PyObjectPointer? {
        native(a) { m, a in
            try a.arity(1...4, "cache_\(sign > 0 ? "inc" : "dec")(key[, amount, expires, cache])")
            let amount = try m.optionalInt(a, 1, default: 1)
            let c = try m.cache(a, 3)
            let (delta, overflow) = amount.multipliedReportingOverflow(by: sign)
            if overflow { throw SWSGIError("cache_inc/dec: amount \(amount) is out of range") }
            return m.int(Int(try m.withBuffer(a, 0, "key") { k in try c.increment(k, by: Int64(delta)) }))
        }
    }

    // MARK: the builtins

    static let builtins: [(String, Int32, PyCFunction)] = [
        ("cache_get", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try a.arity(1...2, "cache_get(key[, cache])")
            let c = try m.cache(a, 1)
            let value = try m.withBuffer(a, 0, "key") { k in
                try c.read(k) { v in m.api.PyBytes_FromStringAndSize(v.baseAddress?.assumingMemoryBound(to: CChar.self), v.count) }
            }
            guard let value else { return m.py.newNone }
            guard let bytes = value else { throw Raised() }
            return bytes
        } }),
        ("cache_set", swsgi_METH_VARARGS, { _, a in cacheStore(a, replace: false) }),
        ("cache_update", swsgi_METH_VARARGS, { _, a in cacheStore(a, replace: true) }),
        ("cache_del", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try a.arity(1...2, "cache_del(key[, cache])")
            let c = try m.cache(a, 1)
            return m.trueOrNone(try m.withBuffer(a, 0, "key") { try c.delete($0) })
        } }),
        ("cache_exists", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try a.arity(1...2, "cache_exists(key[, cache])")
            let c = try m.cache(a, 1)
            return m.trueOrNone(try m.withBuffer(a, 0, "key") { try c.exists($0) })
        } }),
        ("cache_inc", swsgi_METH_VARARGS, { _, a in cacheCount(a, sign: 1) }),
        ("cache_dec", swsgi_METH_VARARGS, { _, a in cacheCount(a, sign: -1) }),
        ("cache_clear", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try UWSGIBinding.cacheClear(cache: try a.string(0))
            return m.py.newNone
        } }),
        ("cache_inc", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            m.int(Int(try UWSGIBinding.cacheInc(try a.bytes(0), by: Int64(try a.int(1)), cache: try a.string(2))))
        } }),
        ("cache_keys", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let keys = try UWSGIBinding.cacheKeys(cache: try a.string(0))
            guard let t = m.api.PyTuple_New(keys.count) else { throw Raised() }
            for (i, k) in keys.enumerated() { _ = m.api.PyTuple_SetItem(t, i, m.bytes(k)) }
            return t
        } }),
        ("register_signal", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let signal = try a.int(0), target = try a.string(1) ?? "", handler = try a.item(2), unique = try a.bool(3)
            m.api.Py_IncRef(handler)  // held for the process's life, like the registration
            do {
                try UWSGIBinding.registerSignal(signal, target: target, unique: unique) { [unowned m] n in
                    m.callback(handler) { [m.int(n)] }
                }
            } catch {
                m.api.Py_DecRef(handler)
                throw error
            }
            return m.py.newNone
        } }),
        ("signal_registered", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            m.bool(UWSGIBinding.signalRegistered(try a.int(0)))
        } }),
        ("add_timer", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try Timers.addTimer(signal: try a.int(0), nanoseconds: try nanoseconds(try a.int(1), unitMilliseconds: try a.int(2)))
            return m.py.newNone
        } }),
        ("add_cron", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try UWSGIBinding.addCron(try a.int(0), try a.int(1), try a.int(2), try a.int(3), try a.int(4), try a.int(5))
            return m.py.newNone
        } }),
        ("lock", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let n = try a.int(0)
            // Waiting for another process must not stop this one's threads.
            try m.py.withoutGIL { try UWSGIBinding.lock(n) }
            return m.py.newNone
        } }),
        ("unlock", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            try UWSGIBinding.unlock(try a.int(0))
            return m.py.newNone
        } }),
        ("mule_msg", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let message = try a.bytes(0), mule = try a.int(1)
            try m.py.withoutGIL { try UWSGIBinding.muleMsg(message, mule: mule) }
            return m.py.newNone
        } }),
        ("mule_get_msg", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let timeout = try a.int(0)
            guard UWSGIBinding.muleID > 0 else { throw SWSGIError("mule_get_msg(): this process is not a mule (start one with --mule=FILE)") }
            let t = Int32(clamping: timeout < 0 ? -1 : timeout)
            let message = m.py.withoutGIL { UWSGIBinding.muleGetMsg(timeoutMilliseconds: t) }
            // Signals (timers) run inside the wait; a Python handler's error is logged there.
            return message.map { m.bytes($0) } ?? m.py.newNone
        } }),
        ("mule_id", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in m.int(UWSGIBinding.muleID) } }),
        ("worker_id", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in m.int(UWSGIBinding.workerID) } }),
        ("masterpid", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in
            // At import in the master (before the services are set up) the master is this process.
            m.int(Int(UWSGIBinding.masterPID > 0 ? UWSGIBinding.masterPID : getpid()))
        } }),
        ("numproc", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in m.int(UWSGIBinding.numproc) } }),
        ("setprocname", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            UWSGIBinding.setProcName(try a.string(0) ?? "")
            return m.py.newNone
        } }),
        ("reload", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in
            try UWSGIBinding.reload()
            return m.py.newNone
        } }),
        ("opt", swsgi_METH_NOARGS, { _, _ in native(nil) { m, _ in
            let all = UWSGIBinding.opt
            guard let t = m.api.PyTuple_New(all.count) else { throw Raised() }
            for (i, o) in all.enumerated() {
                guard let pair = m.api.PyTuple_New(2) else { throw Raised() }
                _ = m.api.PyTuple_SetItem(pair, 0, pyString(m.api, o.name))
                // A flag given alone is True in uWSGI's uwsgi.opt.
                _ = m.api.PyTuple_SetItem(pair, 1, o.value == "true" ? m.py.newNone : pyString(m.api, o.value))
                _ = m.api.PyTuple_SetItem(t, i, pair)
            }
            return t
        } }),
        ("add_postfork", swsgi_METH_VARARGS, { _, a in native(a) { m, a in
            let f = try a.item(0)
            m.api.Py_IncRef(f)
            UWSGIBinding.addPostFork { [unowned m] in m.callback(f) { [] } }
            return m.py.newNone
        } }),
    ]
}
