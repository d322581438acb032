import CGlibcShim
import Common
import Glibc
import HTTP
import Posix
import PythonRuntime
import SWSGI

/// An app failure already reported to the log (with its traceback): the worker answers 500.
struct WSGIAppError: ApplicationFailure, CustomStringConvertible {
    let description: String
}

/// Serves one WSGI app in one worker process, one request at a time (PEP 3333). Holds the GIL only
/// while Python runs: around the app call, each step of its iterable, and close().
final class WSGIWorker {
    let py: Interpreter
    let api: CPythonAPI
    let app: PyObjectPointer
    let fileWrapperType: PyObjectPointer
    let filenoOf: PyObjectPointer
    /// The support code's `in_request` list: [True] while a request is in hand.
    let inRequest: PyObjectPointer
    /// The harakiri handler that reads `inRequest` is installed (a graceful signal, one thread): only then is
    /// it kept up to date (two list stores and two bools per request otherwise spent for nobody).
    let tracksInRequest: Bool
    let inputClass: PyObjectPointer
    var environ: EnvironBuilder!
    /// Which request is in hand, for the objects handed to the app (see `RequestScope`).
    var scope = RequestScope()
    /// start_response, write, wsgi.input and file_wrapper, bound to the request in hand.
    var objects: BoundObjects!
    /// Set once the app has returned (under the GIL): from then on write() cannot start the response,
    /// the worker has taken it over.
    var appReturned = false

    // The request in hand.
    /// wsgi.input's buffer, made on the request's first read (most requests read nothing).
    var body: BodyBuffer?
    var bodyError: RequestBodyError?
    var status: Int?
    var headers = HTTPHeaders()
    var declaredLength: Int?
    var headersSent = false
    /// Forks of this process seen when the worker started: a child the app forks that comes back here
    /// must not go on serving (a counter, not getpid(2): this check runs on every request).
    let forksAtStart = ForkCounter.current
    /// The status object of the last response, with its code and reason phrase.
    var lastStatus: (object: PyObjectPointer, code: Int, reason: [UInt8]?)?
    /// The reason phrase of the response in hand, as the app gave it.
    var reason: [UInt8]?
    /// Body bytes the app produced for the response in hand (write() and the iterable); those past its
    /// Content-Length are logged when the response ends.
    var produced = 0
    let headerTexts = TextCache()
    let headerLists = HeaderListCache()
    /// The request in hand: write() starts its response early.
    var request: Request?
    /// The response body stream once the head is out (write() goes there, in order with yielded chunks).
    var liveStream: ResponseStream?
    /// What write() gets while the worker closes the iterable before the response is sent (a close() or a
    /// generator's `finally` that writes): it follows the body, as under gunicorn and uWSGI, instead of starting
    /// the response ahead of it. Nil outside such a close.
    private var writtenWhileClosing: [UInt8]?

    /// `--disable-write-exception`.
    let disableWriteException: Bool
    /// `--post-buffering`: 0, or the body bytes kept in memory when it is read before the app runs.
    let postBufferingBytes: Int
    /// `--wsgi-disable-file-wrapper`.
    let disableFileWrapper: Bool
    /// `--py-autoreload`: after each app call, watch the modules it imported (nil: off).
    let refreshSources: (() -> Void)?

    /// `threaded`: one of a worker's request threads (`--threads` > 1): wsgi.multithread is true, and
    /// harakiri's graceful handler is the host's, installed once for all threads.
    init(interpreter: Interpreter, app: PyObjectPointer, support: PyObjectPointer, host: WSGIHost, threaded: Bool = false) throws {
        py = interpreter
        api = interpreter.api
        self.app = app
        disableWriteException = host.options.disableWriteException
        disableFileWrapper = host.options.disableFileWrapper
        postBufferingBytes = host.options.postBufferingBytes
        refreshSources = host.options.autoReloadSeconds > 0 ? { host.refreshSources() } : nil
        func item(_ name: String) throws -> PyObjectPointer {
            guard let k = pyString(interpreter.api, name), let v = host.dictItem(support, k) else {
                throw SWSGIError("WSGI support code has no \(name)")
            }
            interpreter.api.Py_DecRef(k)
            return v
        }
        fileWrapperType = try item("FileWrapper")
        filenoOf = try item("fileno_of")
        inRequest = try item("in_request")
        tracksInRequest = host.harakiriGracefulSignal != nil && !threaded
        inputClass = try item("Input")
        // harakiri's graceful signal unwinds the request once the app's own handler has run.
        if let signal = host.harakiriGracefulSignal, !threaded {
            guard let install = try? item("install_harakiri"), let args = api.PyTuple_New(1) else {
                throw SWSGIError("WSGI support code has no install_harakiri")
            }
            _ = api.PyTuple_SetItem(args, 0, api.PyLong_FromLong(Int(signal)))
            let r = api.PyObject_CallObject(install, args)
            api.Py_DecRef(args)
            guard let r else {
                py.printError()
                throw SWSGIError("cannot install the harakiri graceful signal handler")
            }
            api.Py_DecRef(r)
        }
        // A write blocked on a stalled client returns to Python when a signal lands, so harakiri's graceful
        // signal (and any handler of the app) runs and unwinds the request before the SIGKILL.
        onBlockingWriteInterrupted = { [unowned self] in try self.runPendingSignalHandlers() }
        capsuleAPI = api
        guard let errors = api.PySys_GetObject("stderr") else { throw SWSGIError("no sys.stderr for wsgi.errors") }
        guard let version = api.PyTuple_New(2) else { throw SWSGIError("cannot create the WSGI environ") }
        _ = api.PyTuple_SetItem(version, 0, api.PyLong_FromLong(1))
        _ = api.PyTuple_SetItem(version, 1, api.PyLong_FromLong(0))
        let yes = api.PyBool_FromLong(1)!, no = api.PyBool_FromLong(0)!
        let http = pyString(api, "http")!, empty = pyString(api, "")!
        // CGI (RFC 3875 §4.1.17), which PEP 3333 inherits. (httpbin accepts chunked uploads only from a
        // SERVER_SOFTWARE starting with gunicorn/; swsgi does not pretend: wsgi.input_terminated says the
        // same thing to apps that ask.)
        guard let software = pyString(api, SWSGIMain.software) else {
            throw SWSGIError("cannot create the WSGI environ")
        }
        environ = try EnvironBuilder(api: api, constants: [
            ("wsgi.version", version), ("wsgi.url_scheme", http), ("wsgi.errors", errors),
            ("wsgi.multithread", threaded ? yes : no), ("wsgi.multiprocess", yes), ("wsgi.run_once", no),
            ("wsgi.input_terminated", yes), ("SCRIPT_NAME", empty), ("SERVER_SOFTWARE", software),
        ])
        for o in [version, yes, no, http, empty, software] { api.Py_DecRef(o) }
        objects = try makeObjects()
    }

    /// A new set of request objects, installed in the environ template (wsgi.input, wsgi.file_wrapper).
    private func makeObjects() throws -> BoundObjects {
        let binding = RequestBinding(worker: self)
        // The capsule owns the binding; the functions own the capsule. A retired set lives until the app
        // lets go of its last object.
        guard let capsule = api.PyCapsule_New(Unmanaged.passRetained(binding).toOpaque(), nil, { capsule in
            Unmanaged<RequestBinding>.fromOpaque(capsuleAPI!.PyCapsule_GetPointer(capsule, nil)!).release()
        }) else { throw SWSGIError("cannot create the WSGI request objects") }
        defer { api.Py_DecRef(capsule) }
        // Python 3.10 and later take METH_FASTCALL in the stable ABI: called without a tuple made for its arguments.
        let startResponse = makeFunction(py.hasStableFastCall ? Self.startResponseFastDef : Self.startResponseDef, capsule)
        let write = makeFunction(Self.writeDef, capsule)
        let read = makeFunction(Self.readDef, capsule)
        let readline = makeFunction(Self.readlineDef, capsule)
        let fileWrapper = makeFunction(Self.fileWrapperDef, capsule)
        guard let args = api.PyTuple_New(2) else { throw SWSGIError("cannot create wsgi.input") }
        api.Py_IncRef(read)
        api.Py_IncRef(readline)
        _ = api.PyTuple_SetItem(args, 0, read)
        _ = api.PyTuple_SetItem(args, 1, readline)
        let input = api.PyObject_CallObject(inputClass, args)
        api.Py_DecRef(args)
        guard let input else {
            py.printError()
            throw SWSGIError("cannot create wsgi.input")
        }
        environ.setConstant("wsgi.input", input)
        // --wsgi-disable-file-wrapper: no wsgi.file_wrapper in the environ (apps fall back to iterating).
        if !disableFileWrapper { environ.setConstant("wsgi.file_wrapper", fileWrapper) }
        let made = BoundObjects(binding: binding, startResponse: startResponse, write: write, input: input,
                                read: read, readline: readline, fileWrapper: fileWrapper)
        made.recordIdleCounts(api)
        return made
    }

    // The C callbacks: each finds its binding through its capsule and refuses unless its request is in hand.
    private static let startResponseDef = methodDef("start_response", swsgi_METH_VARARGS) { s, a in
        RequestBinding.with(s) { b in b.isLive ? b.worker.startResponse(a) : b.refuse("start_response()") }
    }
    private static let startResponseFastDef = methodDef("start_response", swsgi_METH_FASTCALL | swsgi_METH_KEYWORDS,
                                                        unsafeBitCast(startResponseFast, to: PyCFunction.self))
    private static let startResponseFast: PyCFunctionFastWithKeywords = { s, a, n, keywords in
        RequestBinding.with(s) { b in
            guard b.isLive else { return b.refuse("start_response()") }
            // Refused here, in start_response's own name (CPython's refusal would name it `PyCapsule.start_response()`).
            if let keywords, b.worker.api.PyTuple_Size(keywords) > 0 {
                return b.worker.py.raise(b.worker.api.excTypeError, "start_response() takes no keyword arguments")
            }
            return b.worker.startResponse(a, count: n)
        }
    }
    private static let writeDef = methodDef("write", swsgi_METH_O) { s, a in
        RequestBinding.with(s) { b in b.isLive ? b.worker.write(a) : b.refuse("write()") }
    }
    private static let readDef = methodDef("read", swsgi_METH_VARARGS) { s, a in
        RequestBinding.with(s) { b in b.isLive ? b.worker.inputRead(a, line: false) : b.refuse("wsgi.input.read()") }
    }
    private static let readlineDef = methodDef("readline", swsgi_METH_VARARGS) { s, a in
        RequestBinding.with(s) { b in b.isLive ? b.worker.inputRead(a, line: true) : b.refuse("wsgi.input.readline()") }
    }
    private static let fileWrapperDef = methodDef("file_wrapper", swsgi_METH_VARARGS | swsgi_METH_KEYWORDS,
                                                 unsafeBitCast(fileWrapperCall, to: PyCFunction.self))
    private static let fileWrapperCall: PyCFunctionWithKeywords = { s, a, k in
        RequestBinding.with(s) { b in
            guard b.isLive else { return b.refuse("wsgi.file_wrapper()") }
            return b.worker.api.PyObject_Call(b.worker.fileWrapperType, a!, k)
        }
    }

    /// A method table entry for the process's life (sets of request objects are made again and again).
    private static func methodDef(_ name: String, _ flags: Int32, _ body: PyCFunction) -> MethodDef {
        let def = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
        def.initialize(to: PyMethodDef(ml_name: strdup(name), ml_meth: body, ml_flags: flags, ml_doc: nil))
        return MethodDef(pointer: def)
    }

    /// A builtin function calling `def`'s body with the capsule as self.
    private func makeFunction(_ def: MethodDef, _ capsule: PyObjectPointer) -> PyObjectPointer {
        api.PyCFunction_NewEx(def.pointer, capsule, nil)!
    }

    // MARK: request

    func handle(_ request: Request) throws -> Response {
        try py.withGIL {
            begin(request)
            defer {
                appReturned = true
                refreshSources?()
            }
            if postBufferingBytes > 0 {
                do {
                    body = try py.withoutGIL { try PostBuffering.drain(request.body, memoryBytes: postBufferingBytes) }
                } catch let e as RequestBodyError {
                    // Thrown, as when the app's own read fails: the worker answers it and logs its reason.
                    end()
                    throw e
                }
            }
            guard let env = environ.environ(for: request) else { return try failure(result: nil) }
            // Called with its two arguments as they are (as bjoern does): no tuple made and freed per request.
            let result = swsgi_call2(api.PyObject_CallFunctionObjArgs, app, env, objects.startResponse)
            api.Py_DecRef(env)
            exitIfForkedByTheApp()
            guard let result else { return try failure(result: nil) }
            // (Once write() started the response, a file_wrapper is iterated like any iterable.)
            // (A plain list or tuple, the usual `[body]`, is no FileWrapper: asked of one, isinstance would look up
            // __instancecheck__ on every request.)
            if liveStream == nil, !isPlainListOrTuple(result), api.PyObject_IsInstance(result, fileWrapperType) == 1,
               let r = try fileResponse(result) { return r }
            guard var iterator = ResultIterator(py, result) else { return try failure(result: result) }
            var out = KeptBuffer.take(&bodyBuffer)
            var ended = false
            // Headers wait for the first non-empty chunk (PEP 3333); a list is taken whole. Once write()
            // has started the response, the rest streams (write() inside the iterable included).
            pull: while liveStream == nil {
                switch iterator.next(appendingTo: &out) {
                case .bytes(let n):
                    if liveStream != nil { break pull }
                    // PEP 3333: with Content-Length given, stop iterating once it is reached. What a list
                    // holds past it is known without running app code: it is cut, and logged.
                    if let declaredLength, out.count >= declaredLength {
                        ended = true
                        _ = count(out.count + iterator.remainingSequenceBytes())
                        if out.count > declaredLength { out.removeLast(out.count - declaredLength) }
                        break pull
                    }
                    if n > 0 && !iterator.isSequence { break pull }
                case .end: ended = true; break pull
                case .failed: return try failure(result: result, iterator: iterator)
                }
            }
            guard let status else {
                _ = py.raise(api.excAssertionError, "the WSGI app returned without calling start_response")
                return try failure(result: result, iterator: iterator)
            }
            headersSent = true
            // Sent whole now: a plain list or tuple (it has no close()); or another iterable whose body is over by
            // what the app declared (its Content-Length reached) or by the request (HEAD, 204, 304), its close()
            // run once the response has gone out (`closeAfterResponse`), as under gunicorn and uWSGI, so a Flask
            // call_on_close or Django request_finished handler never delays the client. Any other ended iterable
            // streams: what its close() writes is still the body's end (as uWSGI sends it).
            if ended && liveStream == nil && (iterator.isSequence || declaredLength.map({ out.count >= $0 }) == true
                                               || status == 204 || status == 304 || request.method == "HEAD") {
                produced = max(produced, out.count)
                let closesLater = !iterator.isSequence
                if closesLater {
                    unclosed = (result, iterator)
                } else {
                    close(result, iterator)
                    end()
                }
                var r: Response
                if declaredLength == nil || declaredLength == out.count {
                    if !closesLater { KeptBuffer.giveBack(out, to: &bodyBuffer) }
                    r = Response(status: status, headers: headers, body: out)
                } else {
                    let body = out
                    r = Response(status: status, headers: headers) { try $0.write(body) }
                    r.contentLength = declaredLength
                }
                r.reason = reason
                r.headerNamesChecked = true
                if closesLater {
                    r.finish = { [unowned self] in
                        self.py.withGIL {
                            self.closeAfterResponse()
                            self.end()
                        }
                    }
                }
                return r
            }
            // The closures take copies: a `var` an escaping closure captures is boxed on the heap where it is
            // declared, on every request, even one (the usual list) that never gets here.
            let first = out, pulled = iterator, rest: ResultIterator? = ended ? nil : iterator
            var response = Response(status: status, headers: headers) { [unowned self] stream in
                try self.stream(first: first, from: rest, to: stream)
            }
            response.reason = reason
            response.contentLength = declaredLength
            response.headerNamesChecked = true
            unclosed = (result, pulled)
            response.finish = { [unowned self] in
                self.py.withGIL {
                    self.closeResult()
                    self.end()
                }
            }
            return response
        }
    }

    /// A list's body is gathered in one buffer kept between requests (`KeptBuffer`; no array made per request): taken here,
    /// shared with the Response that sends it, and uniquely held again once that Response is gone. (Should
    /// anything still hold it, emptying it makes a new one: copy on write.)
    private var bodyBuffer: [UInt8] {
        unsafeAddress { bodyBufferCell.address }
        unsafeMutableAddress { bodyBufferCell.pointer }
    }
    private let bodyBufferCell = Cell([UInt8]())

    /// Closes the iterable of a response that failed before it was sent, and returns what write() got meanwhile
    /// (`writtenWhileClosing`; the caller drops it: the answer is the worker's error response).
    private func closeGatheringWrites(_ result: PyObjectPointer, _ iterator: ResultIterator?) -> [UInt8] {
        writtenWhileClosing = []
        close(result, iterator)
        defer { writtenWhileClosing = nil }
        return writtenWhileClosing ?? []
    }

    /// Closes `unclosed` once its response went out whole: what its close() writes can no longer join the body. It
    /// is counted (past a Content-Length, `end` logs it as cut) and, without one, logged here as not sent.
    private func closeAfterResponse() {
        writtenWhileClosing = []
        closeResult()
        let late = writtenWhileClosing?.count ?? 0
        writtenWhileClosing = nil
        if late > 0 && declaredLength == nil {
            ServerLog.line("write() from the iterable's close() after its response was complete: \(late) byte(s) not sent")
        }
    }

    /// The streamed response's iterable, until it is closed: at the stream's end, while the body is still open (what
    /// its close() writes follows the body, in the body), or when the response is over whatever happened.
    private var unclosed: (result: PyObjectPointer, iterator: ResultIterator?)?

    /// Closes `unclosed`, once (under the GIL).
    private func closeResult() {
        guard let (result, iterator) = unclosed else { return }
        unclosed = nil
        close(result, iterator)
    }

    private func stream(first: [UInt8], from iterator: ResultIterator?, to stream: ResponseStream) throws {
        // Under the GIL: an app's thread calling write() reads them there.
        let reached = py.withGIL {
            liveStream = stream
            return count(first.count)
        }
        try stream.write(first)
        guard var iterator, !reached else { return py.withGIL { closeResult() } }
        defer { py.withGIL { closeResult() } }
        while true {
            // Socket writes happen without the GIL, so the app's threads run meanwhile.
            var reached = false
            let step = py.withGIL {
                let step = iterator.next()
                if case .chunk(let b) = step { reached = count(b.count) }
                return step
            }
            exitIfForkedByTheApp()
            switch step {
            case .chunk(let b):
                try stream.write(b)
                // PEP 3333: once Content-Length is reached, the server stops iterating.
                if reached { return }
            case .end: return
            case .failed:
                py.withGIL { py.printError() }
                throw WSGIAppError(description: "exception in the WSGI app after the response started (traceback above)")
            }
        }
    }

    /// wsgi.file_wrapper over a real file: sendfile(2) from its current position. nil: iterate it.
    private func fileResponse(_ result: PyObjectPointer) throws -> Response? {
        guard let args = api.PyTuple_New(1) else { return nil }
        api.Py_IncRef(result)
        _ = api.PyTuple_SetItem(args, 0, result)
        let info = api.PyObject_CallObject(filenoOf, args)
        api.Py_DecRef(args)
        guard let info else { api.PyErr_Clear(); return nil }
        defer { api.Py_DecRef(info) }
        guard info != api.none, api.PyTuple_Size(info) == 3 else { return nil }
        let fd = Int32(truncatingIfNeeded: api.PyLong_AsSsize_t(api.PyTuple_GetItem(info, 0)!))
        let position = api.PyLong_AsSsize_t(api.PyTuple_GetItem(info, 1)!)
        let size = api.PyLong_AsSsize_t(api.PyTuple_GetItem(info, 2)!)
        // (fileno_of checks its values; an error left pending here would surface in the next request.)
        if api.PyErr_Occurred() != nil || fd < 0 || position < 0 || size < 0 { api.PyErr_Clear(); return nil }
        guard let status else {
            _ = py.raise(api.excAssertionError, "the WSGI app returned without calling start_response")
            return try failure(result: result)
        }
        headersSent = true
        let length = declaredLength ?? max(0, size - position)
        if length < size - position { logCut(size - position - length, length) }
        // The Python file owns the fd (finish closes it): an offload thread works on its own duplicate.
        var response = Response(status: status, headers: headers, file: ResponseFile(fd: fd, offset: position, count: length, owned: false))
        response.reason = reason
        response.headerNamesChecked = true
        response.finish = { [unowned self] in
            self.py.withGIL {
                self.close(result, nil)
                self.end()
            }
        }
        return response
    }

    /// The app failed before the response started: log the traceback, release what it returned,
    /// and let the worker answer (500, or the body error's status when reading the body failed).
    private func failure(result: PyObjectPointer?, iterator: ResultIterator? = nil) throws -> Response {
        py.printError()
        // (What the close writes is dropped: the answer is the worker's error response.)
        if let result { _ = closeGatheringWrites(result, iterator) }
        produced = 0
        let bodyError = self.bodyError
        end()
        if let bodyError { throw bodyError }
        throw WSGIAppError(description: "exception in the WSGI app (traceback above)")
    }

    /// `o`'s type is exactly list or tuple (not a subclass).
    private func isPlainListOrTuple(_ o: PyObjectPointer) -> Bool {
        guard let type = api.PyObject_Type(o) else { return false }
        api.Py_DecRef(type)
        return type == api.listType || type == api.tupleType
    }

    /// Calls the iterable's close() if it has one and drops our references.
    private func close(_ result: PyObjectPointer, _ iterator: ResultIterator?) {
        var iterator = iterator
        // A plain list or tuple (the usual `[body]`) has no close(): asking would raise and clear an AttributeError.
        if let type = api.PyObject_Type(result) {
            api.Py_DecRef(type)
            if type == api.listType || type == api.tupleType {
                iterator?.release()
                api.Py_DecRef(result)
                return
            }
        }
        let pending = savePendingError()
        if let close = api.PyObject_GetAttrString(result, "close") {
            if let r = api.PyObject_CallObject(close, nil) { api.Py_DecRef(r) } else { py.printError() }
            api.Py_DecRef(close)
        } else {
            api.PyErr_Clear()
        }
        iterator?.release()
        api.Py_DecRef(result)
        restore(pending)
    }

    private func savePendingError() -> (PyObjectPointer?, PyObjectPointer?, PyObjectPointer?) {
        var t: PyObjectPointer?, v: PyObjectPointer?, tb: PyObjectPointer?
        api.PyErr_Fetch(&t, &v, &tb)
        return (t, v, tb)
    }

    private func restore(_ e: (PyObjectPointer?, PyObjectPointer?, PyObjectPointer?)) {
        if e.0 != nil { api.PyErr_Restore(e.0, e.1, e.2) }
    }

    private func setInRequest(_ value: Bool) {
        guard tracksInRequest else { return }
        // PyList_SetItem steals the new reference and releases the old one.
        _ = api.PyList_SetItem(inRequest, 0, api.PyBool_FromLong(value ? 1 : 0))
    }

    private func begin(_ request: Request) {
        // Signals that arrived while the worker was idle run their Python handlers now, outside the
        // request: a late harakiri signal must not interrupt the next request.
        if api.PyErr_CheckSignals() != 0 { py.printError() }
        // An error a path left pending must not surface in this request's app code (blamed on its own calls).
        if api.PyErr_Occurred() != nil {
            ServerLog.line("a Python error was left pending before this request; cleared:")
            py.printError()
        }
        // A request thread: a harakiri interrupt meant for its previous request is stale.
        if py.hasRequestThreads { py.requestThreads?.clearPendingInterrupt() }
        setInRequest(true)
        objects.binding.generation = scope.open()
        appReturned = false
        body = nil
        bodyError = nil
        status = nil
        reason = nil
        produced = 0
        writtenWhileClosing = nil
        headers = HTTPHeaders()
        declaredLength = nil
        headersSent = false
        self.request = request
        liveStream = nil
    }

    /// The request is over: its objects refuse from now on. A set the app still holds is retired for
    /// good (its generation is never opened again) and the next request gets a new one.
    private func end() {
        if let declaredLength, produced > declaredLength { logCut(produced - declaredLength, declaredLength) }
        produced = 0
        scope.close()
        setInRequest(false)
        body = nil
        liveStream = nil
        request = nil
        if objects.isKept {
            let kept = objects!
            do { objects = try makeObjects() } catch {
                // Without new objects the kept ones would serve the next request: this worker stops.
                ServerLog.line("cannot make new WSGI request objects (\(error)); the worker exits")
                _exit(1)
            }
            kept.release(api)
        }
    }

    /// Counts `n` more body bytes from the app; true once its Content-Length is reached. A body that goes
    /// past it is cut there (PEP 3333: never more than Content-Length on the wire); what was dropped is
    /// logged once, in all, when the response ends (`end`): write() calls after the first past it count too.
    private func count(_ n: Int) -> Bool {
        produced += n
        guard let declaredLength else { return false }
        return produced >= declaredLength
    }

    private func logCut(_ extra: Int, _ declared: Int) {
        ServerLog.line("response body longer than its Content-Length \(declared): \(extra) byte(s) past it not sent")
    }

    /// An os.fork() child that returned from the app would answer on the worker's connection and then
    /// accept as a rogue worker nobody supervises: it ends here, without running exit handlers.
    private func exitIfForkedByTheApp() {
        guard ForkCounter.current != forksAtStart else { return }
        let line = Array("swsgi worker (pid \(getpid())): a process forked by the app returned from the WSGI callable; it exits\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        _exit(0)
    }

    /// Runs Python's pending signal handlers from a blocked socket write (GIL held or not); throws when
    /// one raised (harakiri's HarakiriInterrupt during a request), after logging its traceback.
    func runPendingSignalHandlers() throws {
        let state = api.PyGILState_Ensure()
        defer { api.PyGILState_Release(state) }
        guard api.PyErr_CheckSignals() != 0 else { return }
        py.printError()
        throw WSGIAppError(description: "write to the client interrupted by a signal handler's exception (traceback above)")
    }

    // MARK: callables the app gets

    /// start_response(status, response_headers, exc_info=None) -> write, with its arguments in a tuple (METH_VARARGS,
    /// before Python 3.10).
    func startResponse(_ args: PyObjectPointer?) -> PyObjectPointer? {
        guard let args else { return nil }
        let n = api.PyTuple_Size(args)
        guard n == 2 || n == 3 else { return startResponse(nil, count: n) }
        var items = (api.PyTuple_GetItem(args, 0), api.PyTuple_GetItem(args, 1), n == 3 ? api.PyTuple_GetItem(args, 2) : nil)
        return withUnsafePointer(to: &items) {
            $0.withMemoryRebound(to: PyObjectPointer?.self, capacity: 3) { startResponse($0, count: n) }
        }
    }

    /// start_response with its `n` arguments in the caller's array (METH_FASTCALL).
    func startResponse(_ args: UnsafePointer<PyObjectPointer?>?, count n: Int) -> PyObjectPointer? {
        guard n == 2 || n == 3, let args, let statusObject = args[0], let headerList = args[1] else {
            return py.raise(api.excTypeError, "start_response() takes 2 or 3 arguments (\(n) given)")
        }
        // The caller's array is borrowed, and Python code runs in here (a finaliser of a released status or header
        // text): one that drops the array's owner (functools.partial passes its own arguments in place) would free
        // them. Held for the call, as METH_VARARGS's tuple holds them.
        let excInfoArgument = n == 3 ? args[2] : nil
        api.Py_IncRef(statusObject)
        api.Py_IncRef(headerList)
        if let excInfoArgument { api.Py_IncRef(excInfoArgument) }
        defer {
            api.Py_DecRef(statusObject)
            api.Py_DecRef(headerList)
            if let excInfoArgument { api.Py_DecRef(excInfoArgument) }
        }
        if let excInfo = excInfoArgument, excInfo != api.none {
            if headersSent {
                // PEP 3333: too late to change the response; re-raise the app's exception
                // (`raise exc_info[1].with_traceback(exc_info[2])`).
                return reraise(excInfo)
            }
        } else if status != nil {
            return py.raise(api.excAssertionError, "start_response called a second time without exc_info")
        }
        guard let (code, phrase) = statusCode(statusObject) else { return nil }
        guard api.PyObject_IsInstance(headerList, api.listType) == 1 else {
            return py.raise(api.excTypeError, "response_headers must be a list of (name, value) tuples, not \(py.typeName(headerList))")
        }
        let count = api.PyList_Size(headerList)
        // An object that only claims to be a list (its __class__).
        guard count >= 0 else {
            api.PyErr_Clear()
            return py.raise(api.excTypeError, "response_headers must be a list of (name, value) tuples, not \(py.typeName(headerList))")
        }
        if headerLists.holds(headerList, count: count, api) {
            status = code
            reason = phrase
            headers = headerLists.headers
            declaredLength = headerLists.length
            api.Py_IncRef(objects.write)
            return objects.write
        }
        // Read from a copy: converting the items releases cached texts, whose finalisers (Python code) could empty
        // or change the app's list, and free the tuples read from it.
        guard let snapshot = api.PyList_GetSlice(headerList, 0, count) else { return nil }
        defer { api.Py_DecRef(snapshot) }
        var parsed = HTTPHeaders()
        var length: Int? = nil
        var items: [PyObjectPointer] = []
        items.reserveCapacity(count)
        for i in 0..<count {
            guard let pair = api.PyList_GetItem(snapshot, i) else { return nil }
            items.append(pair)
            guard api.PyObject_IsInstance(pair, api.tupleType) == 1 else {
                return py.raise(api.excTypeError, "response header \(i) is a \(py.typeName(pair)), not a (name, value) tuple")
            }
            let size = api.PyTuple_Size(pair)
            guard size == 2 else {
                return py.raise(api.excTypeError, "response header \(i) is a tuple of \(size) item\(size == 1 ? "" : "s"), not a (name, value) pair")
            }
            guard let name = headerText(api.PyTuple_GetItem(pair, 0)!, name: nil),
                  let value = headerText(api.PyTuple_GetItem(pair, 1)!, name: name.text) else { return nil }
            if name.isContentLength {
                guard let l = value.number else {
                    let negative = value.text.drop(while: { $0 == " " || $0 == "\t" }).first == "-"
                    return py.raise(api.excValueError, "Content-Length \(pythonRepr(value.text)) is \(negative ? "negative" : "not a number"): "
                        + "it must be a non-negative decimal number of bytes")
                }
                // Two different lengths: which one the body is meant to have cannot be known.
                if let length, length != l {
                    return py.raise(api.excValueError, "Content-Length given twice with different values (\(length) and \(l))")
                }
                length = l
                continue
            }
            // A value with latin-1 characters past ASCII goes out as those bytes (PEP 3333), not as UTF-8.
            parsed.fields.append(HTTPField(name: name.text, value: value.text, rawValue: value.latin1))
        }
        status = code
        reason = phrase
        headers = parsed
        declaredLength = length
        headerLists.remember(items, headers: parsed, length: length, api)
        api.Py_IncRef(objects.write)
        return objects.write
    }

    /// start_response's exc_info once the response has started: its exception raised again, with its traceback.
    /// Anything but an exception instance (`sys.exc_info()` outside an `except` block gives Nones) or a traceback
    /// is a TypeError the app can catch: handed to CPython as the pending error it would crash the worker.
    private func reraise(_ excInfo: PyObjectPointer) -> PyObjectPointer? {
        let what = "start_response(): exc_info must be sys.exc_info() of an exception being handled"
        guard api.PyObject_IsInstance(excInfo, api.tupleType) == 1, api.PyTuple_Size(excInfo) == 3,
              let value = api.PyTuple_GetItem(excInfo, 1), let tb = api.PyTuple_GetItem(excInfo, 2)
        else { api.PyErr_Clear(); return py.raise(api.excTypeError, "\(what), not a tuple of three") }
        guard api.PyObject_IsInstance(value, api.excBaseException) == 1 else {
            api.PyErr_Clear()
            return py.raise(api.excTypeError, "\(what): its value is a \(py.typeName(value)), not an exception")
        }
        // TypeError from CPython when the traceback is neither a traceback nor None.
        if tb != api.none && api.PyException_SetTraceback(value, tb) != 0 { return nil }
        guard let type = api.PyObject_Type(value) else { return nil }
        api.Py_IncRef(value)
        api.PyErr_Restore(type, value, api.PyException_GetTraceback(value))
        return nil
    }

    /// The write() callable start_response returns.
    func write(_ data: PyObjectPointer?) -> PyObjectPointer? {
        guard status != nil else { return py.raise(api.excAssertionError, "write() before start_response") }
        guard let data, let bytes = bytesOf(data, what: "write()") else { return nil }
        // PEP 3333: the head waits for the first non-empty data; then each write() is sent before it returns.
        guard !bytes.isEmpty else { return py.newNone }
        _ = count(bytes.count)
        // (Read, then assigned whole: an in-place append would be a long access that costs every request's
        // accesses to the property a dynamic exclusivity check.)
        if let collected = writtenWhileClosing {
            writtenWhileClosing = collected + bytes
            return py.newNone
        }
        do {
            if liveStream == nil {
                guard let request, let status else { return py.raise(api.excAssertionError, "write() outside a request") }
                // After the app returned only another thread can call write(), before the worker has set up the
                // stream the iterable feeds: too late to start the response here.
                guard !appReturned else { return py.raise(api.excOSError, "write() from another thread after the app returned") }
                liveStream = try request.startResponse(status: status, reason: reason, headers: headers, contentLength: declaredLength)
                headersSent = true
            }
            let stream = liveStream!
            // Without the GIL, as the yield path: a client that does not read must not stop the app's threads.
            try py.withoutGIL { try stream.write(bytes) }
        } catch {
            // --disable-write-exception: the client is gone; the app carries on as if written (uWSGI's).
            if disableWriteException { return py.newNone }
            return py.raise(api.excOSError, "write(): \(error)")
        }
        return py.newNone
    }

    /// wsgi.input's read(size) and readline(size).
    func inputRead(_ args: PyObjectPointer?, line: Bool) -> PyObjectPointer? {
        var size = -1
        if let args, api.PyTuple_Size(args) >= 1, let s = api.PyTuple_GetItem(args, 0), s != api.none {
            size = api.PyLong_AsSsize_t(s)
            if size == -1, api.PyErr_Occurred() != nil { return nil }
        }
        let body: BodyBuffer
        if let b = self.body {
            body = b
        } else if let request {
            // Weak: a thread of the app may still be in a read of this buffer when the request ends (its response does
            // not wait for the body); its next pull must refuse, not touch a request that is gone.
            body = BodyBuffer { [weak request] in
                guard let request else { throw RequestBodyError(status: 400, message: "wsgi.input read after its request was over") }
                return try request.body.read()
            }
            self.body = body
        } else {
            body = .empty()
        }
        do {
            // The buffer is shared with any thread of the app reading the same input: one reader at a time.
            let bytes = try py.withoutGIL { try request?.body.serialized { line ? try body.readline(size) : try body.read(size) } ?? [] }
            return bytes.withUnsafeBytes { api.PyBytes_FromStringAndSize($0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        } catch let e as RequestBodyError {
            bodyError = e
            return py.raise(api.excOSError, e.message)
        } catch {
            return py.raise(api.excOSError, "\(error)")
        }
    }

    // MARK: conversions

    /// The code and reason phrase (its latin-1 bytes, sent as given: PEP 3333; nil when there is none)
    /// of a status like "200 OK"; nil with a Python error set. The app's last status object is
    /// remembered (a str cannot change), so the usual constant status is read once.
    func statusCode(_ o: PyObjectPointer) -> (Int, [UInt8]?)? {
        if let last = lastStatus, last.object == o { return (last.code, last.reason) }
        var reasonBytes: [UInt8] = []
        guard let statusText = latin1String(o, what: "status", invalid: { raw in
            // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); CR or LF would end the
            // status line early and let the app's text become header lines.
            if raw.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                return "status \(pythonRepr(latin1: raw)) has a control character (CR, LF or another)"
            }
            reasonBytes = Array(raw.dropFirst(4))
            return nil
        }) else { return nil }
        let digits = statusText.utf8.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (0x30...0x39).contains($0) }),
              let code = Int(String(decoding: digits, as: UTF8.self)), code >= 100,
              statusText.utf8.count == 3 || statusText.utf8.dropFirst(3).first == 0x20 else {
            _ = py.raise(api.excValueError, "status \(pythonRepr(statusText)) is not like '200 OK'")
            return nil
        }
        // RFC 9110 §15: a status code is 100-599; a client may take anything above for a broken response.
        guard code <= 599 else {
            _ = py.raise(api.excValueError, "status \(pythonRepr(statusText)) is outside 100-599 (RFC 9110 §15)")
            return nil
        }
        // A 1xx is an interim response: sent as the app's final one, the client would wait for another.
        guard code >= 200 else {
            _ = py.raise(api.excValueError, "status \(pythonRepr(statusText)) is informational (1xx); a WSGI response needs a final status (200 or more)")
            return nil
        }
        // The standard phrase (the usual "200 OK") is left to the writer's static text.
        let reason = reasonBytes.isEmpty || reasonBytes.elementsEqual(HTTPResponseWriter.reasonPhrase(code).utf8) ? nil : reasonBytes
        api.Py_IncRef(o)
        // Replaced before the old one is released: releasing can run Python code (a __del__) that calls
        // start_response again, and it must find the cache whole.
        let previous = lastStatus
        lastStatus = (o, code, reason)
        if let previous { api.Py_DecRef(previous.object) }
        return (code, reason)
    }

    /// A response header's name (`name` nil) or value, checked and read as text; the app's constant
    /// strings are checked and read once (see `TextCache`). nil with a Python error set.
    func headerText(_ o: PyObjectPointer, name: String?) -> HeaderText? {
        let isName = name == nil
        if let known = headerTexts.text(of: o, isName: isName) { return known }
        let what = name.map { "response header \($0)'s value" } ?? "a response header name"
        guard let text = latin1String(o, what: what, invalid: { raw in
            if let name {
                // RFC 9110 §5.5: a field value is visible characters, SP, HTAB and obs-text; CR or LF would
                // split the head, and the other controls are refused like them rather than sent altered.
                return raw.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F })
                    ? "response header \(name) has a control character (CR, LF or another) in its value" : nil
            }
            return isToken(raw) ? nil : HTTPResponseWriter.invalidNameMessage(quoted: pythonRepr(latin1: raw))
        }) else { return nil }
        let raw: [UInt8]? = text.unicodeScalars.contains(where: { $0.value >= 0x80 })
            ? text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } : nil
        let known = HeaderText(text: text, isContentLength: isName && equalsIgnoringASCIICase(text, "content-length"),
                               number: isName ? nil : contentLength(text), latin1: raw)
        headerTexts.remember(o, isName: isName, known, api: api)
        return known
    }

    /// The text of a str of latin-1 characters; nil with a Python error set (TypeError for an object that is not
    /// a str, ValueError naming the first character that is not latin-1, or with the message `invalid` gives for its bytes).
    func latin1String(_ o: PyObjectPointer, what: String, invalid: (UnsafeRawBufferPointer) -> String? = { _ in nil }) -> String? {
        let b: PyObjectPointer
        switch py.encode(o, .latin1) {
        case .success(let encoded): b = encoded
        case .failure(let problem):
            var message = problem.message(what)
            if case .unencodable = problem {
                message += ": PEP 3333 status and header strings hold latin-1 characters only (encode other text, e.g. RFC 8187 for filenames)"
            }
            _ = py.raise(problem.exception(api), message)
            return nil
        }
        defer { api.Py_DecRef(b) }
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        guard api.PyBytes_AsStringAndSize(b, &p, &n) == 0, let p else { return nil }
        // Latin-1 bytes to Swift text scalar by scalar, so they round-trip to the same bytes on the wire
        // (ASCII, the common case, is the same bytes in UTF-8).
        let raw = UnsafeRawBufferPointer(start: p, count: n)
        if let message = invalid(raw) {
            _ = py.raise(api.excValueError, message)
            return nil
        }
        if !raw.contains(where: { $0 >= 0x80 }) { return String(decoding: raw, as: UTF8.self) }
        var s = ""
        s.unicodeScalars.append(contentsOf: raw.map { Unicode.Scalar($0) })
        return s
    }

    func bytesOf(_ o: PyObjectPointer, what: String) -> [UInt8]? {
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        guard api.PyObject_IsInstance(o, api.bytesType) == 1, api.PyBytes_AsStringAndSize(o, &p, &n) == 0 else {
            api.PyErr_Clear()
            _ = py.raise(api.excTypeError, "\(what) takes bytes, not \(py.typeName(o))")
            return nil
        }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// Latin-1 text as Python's repr() shows a str (the app's own notation in its exception messages): quotes,
/// backslash escapes for controls, quotes and backslashes, `\xNN` for what Python does not print.
func pythonRepr(latin1 raw: UnsafeRawBufferPointer) -> String {
    var out = "'"
    for b in raw {
        switch b {
        case 0x5C: out += "\\\\"
        case 0x27: out += "\\'"
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0..<0x20, 0x7F...0xA0, 0xAD:
            let hex = Array("0123456789abcdef".unicodeScalars)
            out += "\\x"
            out.unicodeScalars.append(hex[Int(b >> 4)])
            out.unicodeScalars.append(hex[Int(b & 15)])
        default: out.unicodeScalars.append(Unicode.Scalar(b))
        }
    }
    return out + "'"
}

/// `pythonRepr(latin1:)` of text holding latin-1 characters only (as read from a checked str).
func pythonRepr(_ text: String) -> String {
    let bytes = text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    return bytes.withUnsafeBytes { pythonRepr(latin1: $0) }
}

/// Content-Length's value: digits only (RFC 9110 §8.6), spaces and tabs around them allowed.
func contentLength(_ value: String) -> Int? {
    var digits = Substring(value).utf8[...]
    while let f = digits.first, f == 0x20 || f == 0x09 { digits = digits.dropFirst() }
    while let l = digits.last, l == 0x20 || l == 0x09 { digits = digits.dropLast() }
    guard !digits.isEmpty, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
    // Leading zeros are digits too; 18 significant ones cannot overflow an Int.
    while digits.count > 1, digits.first == 0x30 { digits = digits.dropFirst() }
    guard digits.count <= 18 else { return nil }
    return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
}

/// A response header's name or value as checked and read. A class: a cache hit hands out one reference,
/// not a copy of its text and bytes.
final class HeaderText {
    let text: String
    /// A name that is Content-Length (any case).
    let isContentLength: Bool
    /// A value's number, when it is a valid Content-Length.
    let number: Int?
    /// A value's latin-1 bytes when it has characters past ASCII (sent as they are, not as UTF-8).
    let latin1: [UInt8]?

    init(text: String, isContentLength: Bool, number: Int?, latin1: [UInt8]?) {
        self.text = text
        self.isContentLength = isContentLength
        self.number = number
        self.latin1 = latin1
    }
}

/// A method table entry, made once per process and shared by every set of request objects.
struct MethodDef: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<PyMethodDef>
}

/// Header names and values read lately, by str object identity: an app's header names and values
/// are mostly the same constant objects request after request. A reference is held on each, so an
/// address cannot be reused by another object while it is here (a `RingCache` of 32). Names and
/// values are kept apart: each passed its own check.
final class TextCache {
    private let ring = RingCache<(object: PyObjectPointer, isName: Bool, text: HeaderText)>(capacity: 32)

    func text(of o: PyObjectPointer, isName: Bool) -> HeaderText? {
        ring.lookup { buf in
            for i in buf.indices where buf[i].object == o && buf[i].isName == isName { return buf[i].text }
            return nil
        }
    }

    func remember(_ o: PyObjectPointer, isName: Bool, _ text: HeaderText, api: CPythonAPI) {
        api.Py_IncRef(o)
        if let evicted = ring.insert((o, isName, text)) { api.Py_DecRef(evicted.object) }
    }
}

/// The last response header list start_response converted, known by its items: a constant list (a module's
/// `HEADERS`, the common case) is checked and converted once, and its `HTTPHeaders` (the same array each time)
/// lets the response writer reuse its field lines too. Each item is a tuple whose items are str, all
/// immutable, and a reference to it is held here, so its address cannot be taken by another object: the
/// same items in the same order are the same headers, whatever list holds them.
final class HeaderListCache {
    private var items: [PyObjectPointer] = []
    private(set) var headers = HTTPHeaders()
    private(set) var length: Int?

    /// `list` (of `count` items) holds exactly the remembered items.
    func holds(_ list: PyObjectPointer, count: Int, _ api: CPythonAPI) -> Bool {
        guard count == items.count, count > 0 else { return false }
        for i in 0..<count where api.PyList_GetItem(list, i) != items[i] { return false }
        return true
    }

    func remember(_ newItems: [PyObjectPointer], headers: HTTPHeaders, length: Int?, _ api: CPythonAPI) {
        for o in newItems { api.Py_IncRef(o) }
        // Replaced before the old ones are released: releasing can run Python code (a __del__) that calls
        // start_response again, and it must find the cache whole.
        let previous = items
        items = newItems
        self.headers = headers
        self.length = length
        for o in previous { api.Py_DecRef(o) }
    }
}

/// The api for the C callbacks, which get only their capsule: set once per process before any callback exists.
nonisolated(unsafe) var capsuleAPI: CPythonAPI?
