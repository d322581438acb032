import CGlibcShim
import PythonRuntime
import SWSGI

/// Which request is in hand, as the objects handed to a WSGI app see it. Each request opens a new
/// generation; between requests none is open. An object made for one generation answers only while
/// that generation is the open one: a finished request's write(), start_response, wsgi.input and
/// file_wrapper cannot reach the next request, whichever thread calls them. Read and changed only
/// with the GIL held (every call from Python holds it), so the check is one integer compare.
struct RequestScope {
    /// Between requests: no binding's generation is ever this.
    private static let closed = UInt64.max
    /// The open generation, or `closed`.
    private(set) var current = RequestScope.closed
    private var last: UInt64 = 0

    /// Opens the next request's generation.
    mutating func open() -> UInt64 {
        last += 1
        current = last
        return last
    }

    mutating func close() { current = Self.closed }

    func isOpen(_ generation: UInt64) -> Bool { generation == current }
}

/// What the capsule behind one set of request objects points to: the generation they serve. The
/// worker rebinds a set to each new request while the app keeps none of its objects (nobody else can
/// call them); a set the app kept is retired with its old generation and a new set is made, so a
/// kept object stays dead for good. Retained by its capsule, released when Python frees the capsule.
final class RequestBinding {
    unowned(unsafe) let worker: WSGIWorker
    var generation: UInt64 = 0
    /// A refused call was logged (once per kept set, however often the app's thread retries).
    var refusalLogged = false

    init(worker: WSGIWorker) { self.worker = worker }

    /// Runs `body` with the binding behind `capsule` (the self of a callback). Borrowed, not retained: the capsule
    /// holds it, and the capsule is alive for the call (a reference counted per call is two atomic operations).
    static func with<T>(_ capsule: PyObjectPointer?, _ body: (RequestBinding) -> T) -> T {
        Unmanaged<RequestBinding>.fromOpaque(capsuleAPI!.PyCapsule_GetPointer(capsule!, nil)!)._withUnsafeGuaranteedRef(body)
    }

    /// Whether the request these objects were handed for is the one in hand.
    var isLive: Bool { worker.scope.isOpen(generation) }

    /// Raises OSError (what gunicorn's closed socket raises) and logs once per set.
    func refuse(_ what: String) -> PyObjectPointer? {
        if !refusalLogged {
            refusalLogged = true
            ServerLog.line("\(what) called after its request was over (the app kept it, perhaps in a thread): "
                + "refused with OSError; objects a WSGI app is handed are valid only during their request")
        }
        return worker.py.raise(worker.api.excOSError, "\(what) called after its request was over")
    }
}

/// The request-bound objects of one binding and the reference counts they have when only swsgi
/// holds them (its own references, the environ template's, wsgi.input's on its methods). A class: the
/// worker reads it on every request, and a struct in its optional stored property would be copied
/// (its arrays retained and released) at each read.
final class BoundObjects {
    let binding: RequestBinding
    let startResponse: PyObjectPointer
    let write: PyObjectPointer
    let input: PyObjectPointer
    let read: PyObjectPointer
    let readline: PyObjectPointer
    let fileWrapper: PyObjectPointer
    private(set) var idleCounts: [Int] = []
    /// Where each object's type keeps its list of weak references (`__weakrefoffset__`): 0, none can be
    /// taken (wsgi.input's class has __slots__); negative, the interpreter manages it out of our sight.
    private(set) var weakListOffsets: [Int] = []

    init(binding: RequestBinding, startResponse: PyObjectPointer, write: PyObjectPointer, input: PyObjectPointer,
         read: PyObjectPointer, readline: PyObjectPointer, fileWrapper: PyObjectPointer) {
        self.binding = binding
        self.startResponse = startResponse
        self.write = write
        self.input = input
        self.read = read
        self.readline = readline
        self.fileWrapper = fileWrapper
    }

    private var all: [PyObjectPointer] { [startResponse, write, input, read, readline, fileWrapper] }

    /// Records the counts of the set as installed (nothing of the app holds it yet), and where its objects'
    /// weak references would be listed.
    func recordIdleCounts(_ api: CPythonAPI) {
        idleCounts = all.map { swsgi_refcount($0) }
        weakListOffsets = all.map { o in
            guard let type = api.PyObject_Type(o) else { return -1 }
            defer { api.Py_DecRef(type) }
            guard let offset = api.PyObject_GetAttrString(type, "__weakrefoffset__") else {
                api.PyErr_Clear()
                return -1
            }
            defer { api.Py_DecRef(offset) }
            let n = api.PyLong_AsSsize_t(offset)
            if n == -1, api.PyErr_Occurred() != nil { api.PyErr_Clear() }
            return n
        }
    }

    /// Whether anything besides swsgi can still reach one of the objects, so the set must not serve another
    /// request: the app holds it (a global, a thread, a cycle not yet collected), or a weak reference to it
    /// exists, which a reference count does not show (`weakref.ref(write)` called during the next request
    /// would hand back the same object, bound to that request).
    var isKept: Bool {
        if swsgi_refcount(startResponse) != idleCounts[0] || swsgi_refcount(write) != idleCounts[1]
            || swsgi_refcount(input) != idleCounts[2] || swsgi_refcount(read) != idleCounts[3]
            || swsgi_refcount(readline) != idleCounts[4] || swsgi_refcount(fileWrapper) != idleCounts[5] {
            return true
        }
        return hasWeakReference(startResponse, weakListOffsets[0]) || hasWeakReference(write, weakListOffsets[1])
            || hasWeakReference(input, weakListOffsets[2]) || hasWeakReference(read, weakListOffsets[3])
            || hasWeakReference(readline, weakListOffsets[4]) || hasWeakReference(fileWrapper, weakListOffsets[5])
    }

    /// The head of the object's weak reference list is set while any weak reference to it lives (one load).
    /// A list the interpreter keeps elsewhere (a negative offset) cannot be read: counted as kept.
    private func hasWeakReference(_ o: PyObjectPointer, _ offset: Int) -> Bool {
        if offset == 0 { return false }
        if offset < 0 { return true }
        return UnsafeRawPointer(o).load(fromByteOffset: offset, as: UnsafeRawPointer?.self) != nil
    }

    /// Drops swsgi's references (a retired set lives on as long as the app holds it).
    func release(_ api: CPythonAPI) { for o in all { api.Py_DecRef(o) } }
}
