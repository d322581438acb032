import CGlibcShim
import Glibc
import PythonRuntime
import SWSGI

extension WSGIHost {
    /// In a worker with `--threads` > 1 (holding the GIL since `childAfterFork`): imports a lazy app,
    /// builds one `WSGIWorker` per request thread, installs harakiri's graceful handler once (it
    /// interrupts only the threads `overrunning` names), then releases the GIL and switches the
    /// interpreter to per-thread states.
    public func workerThreadApplications(workerID: Int, threads: Int,
                                         overrunning: @escaping () -> [UInt]) throws -> RequestThreadApplications {
        if app == nil {
            do { try loadApp() } catch {
                interpreter.releaseGIL()
                throw error
            }
        }
        var workers: [WSGIWorker] = []
        do {
            try watchSources()
            for _ in 0..<threads {
                workers.append(try WSGIWorker(interpreter: interpreter, app: app!, support: support, host: self, threaded: true))
            }
            if let signal = harakiriGracefulSignal { try installThreadHarakiri(signal: signal, overrunning: overrunning) }
        } catch {
            interpreter.releaseGIL()
            throw error
        }
        interpreter.releaseGIL()
        try interpreter.enableRequestThreads()
        let py = interpreter
        let apps: [Application] = workers.map { w in { request in try w.handle(request) } }
        return RequestThreadApplications(
            apps: apps,
            threadStarted: { py.requestThreads!.attach() },
            signalsArrived: {
                py.withCallbackGIL {
                    if py.api.PyErr_CheckSignals() != 0 { py.printError() }
                }
            })
    }

    /// The support code's `install_harakiri_threads(signum, interrupt)`: on the graceful signal the app's
    /// own handler runs (in the main thread, as Python runs every handler), then `interrupt(exception)`
    /// raises HarakiriInterrupt in each request thread past its deadline (PyThreadState_SetAsyncExc).
    private func installThreadHarakiri(signal: Int32, overrunning: @escaping () -> [UInt]) throws {
        let api = interpreter.api
        let py = interpreter
        harakiriInterrupt = { exception in
            var raised = 0
            for thread in overrunning() where py.requestThreads?.raise(exception, inThread: thread) == true { raised += 1 }
            return raised
        }
        capsuleAPI = api
        let def = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
        def.initialize(to: PyMethodDef(ml_name: strdup("interrupt"), ml_meth: { _, exception in
            guard let api = capsuleAPI, let exception else { return nil }
            let n = harakiriInterrupt?(exception) ?? 0
            return api.PyLong_FromLong(n)
        }, ml_flags: swsgi_METH_O, ml_doc: nil))
        guard let interrupt = api.PyCFunction_NewEx(def, nil, nil),
              let key = pyString(api, "install_harakiri_threads"), let install = dictItem(support, key),
              let args = api.PyTuple_New(2) else {
            throw SWSGIError("WSGI support code has no install_harakiri_threads")
        }
        api.Py_DecRef(key)
        _ = api.PyTuple_SetItem(args, 0, api.PyLong_FromLong(Int(signal)))
        _ = api.PyTuple_SetItem(args, 1, interrupt)
        let r = api.PyObject_CallObject(install, args)
        api.Py_DecRef(args)
        guard let r else {
            interpreter.printError()
            throw SWSGIError("cannot install the harakiri graceful signal handler")
        }
        api.Py_DecRef(r)
    }
}

/// The worker's harakiri interrupter for the support code's `interrupt` builtin: set once per worker
/// before its request threads start, called only with the GIL held.
nonisolated(unsafe) var harakiriInterrupt: ((PyObjectPointer) -> Int)?
