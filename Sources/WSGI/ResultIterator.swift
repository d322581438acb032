import PythonRuntime

/// Walks the iterable a WSGI app returned: a list or tuple (not a subclass) by index (no iterator object, the
/// common `[body]` case), anything else with iter()/next(). Every item must be bytes. A value: one
/// request's walk makes no object.
struct ResultIterator {
    enum Step {
        case chunk([UInt8])
        case end
        /// A Python error is pending (raised by the iterable, or a non-bytes item).
        case failed
    }

    // Unowned: both live as long as the process, and a value copied around must not count references.
    unowned(unsafe) let py: Interpreter
    unowned(unsafe) let api: CPythonAPI
    private let sequence: PyObjectPointer?
    private let isList: Bool
    private var count = 0
    private var index = 0
    private var iterator: PyObjectPointer?

    var isSequence: Bool { sequence != nil }

    /// nil with a Python error pending when `result` is not iterable.
    init?(_ py: Interpreter, _ result: PyObjectPointer) {
        self.py = py
        api = py.api
        // Exactly list or tuple: a subclass may define its own __iter__ (a template's list rendering its parts).
        let type = api.PyObject_Type(result)
        if let type { api.Py_DecRef(type) }
        if type == api.listType {
            sequence = result
            isList = true
            count = api.PyList_Size(result)
        } else if type == api.tupleType {
            sequence = result
            isList = false
            count = api.PyTuple_Size(result)
        } else {
            sequence = nil
            isList = false
            guard let it = api.PyObject_GetIter(result) else { return nil }
            iterator = it
        }
    }

    mutating func next() -> Step {
        withNextItem(end: .end, failed: .failed) { .chunk(Array($0)) }
    }

    enum Appended {
        /// The item's byte count (0: an empty item).
        case bytes(Int)
        case end
        /// A Python error is pending (raised by the iterable, or a non-bytes item).
        case failed
    }

    /// `next`, the item's bytes appended to `out` (no array made per item: the caller keeps one buffer).
    mutating func next(appendingTo out: inout [UInt8]) -> Appended {
        withNextItem(end: .end, failed: .failed) { bytes in
            // (As typed bytes: the copy is one memcpy, where a raw buffer is appended byte by byte.)
            out.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
            return .bytes(bytes.count)
        }
    }

    /// Takes the next item and hands its bytes to `use` while the item is alive.
    private mutating func withNextItem<T>(end: T, failed: T, _ use: (UnsafeRawBufferPointer) -> T) -> T {
        let item: PyObjectPointer
        var owned = false
        if let sequence {
            // A list can change under us (a generator is not involved, but an app may keep it): re-read its size.
            if isList { count = api.PyList_Size(sequence) }
            guard index < count else { return end }
            item = (isList ? api.PyList_GetItem(sequence, index) : api.PyTuple_GetItem(sequence, index))!
            index += 1
        } else if let iterator {
            guard let i = api.PyIter_Next(iterator) else { return api.PyErr_Occurred() != nil ? failed : end }
            item = i
            owned = true
        } else {
            return end
        }
        defer { if owned { api.Py_DecRef(item) } }
        var p: UnsafeMutablePointer<CChar>?
        var n = 0
        guard api.PyObject_IsInstance(item, api.bytesType) == 1, api.PyBytes_AsStringAndSize(item, &p, &n) == 0 else {
            api.PyErr_Clear()
            _ = py.raise(api.excTypeError, "the WSGI app's iterable yielded \(py.typeName(item)), not bytes")
            return failed
        }
        return use(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// The bytes a list or tuple holds past what `next` has taken (0 for other iterables, whose rest
    /// only running the app's code would tell).
    func remainingSequenceBytes() -> Int {
        guard let sequence else { return 0 }
        let total = isList ? api.PyList_Size(sequence) : api.PyTuple_Size(sequence)
        guard index < total else { return 0 }
        var sum = 0
        for i in index..<total {
            let item = (isList ? api.PyList_GetItem(sequence, i) : api.PyTuple_GetItem(sequence, i))!
            var p: UnsafeMutablePointer<CChar>?
            var n = 0
            if api.PyObject_IsInstance(item, api.bytesType) == 1, api.PyBytes_AsStringAndSize(item, &p, &n) == 0 { sum += n } else { api.PyErr_Clear() }
        }
        return sum
    }

    /// Drops the iterator (the result itself belongs to the caller).
    mutating func release() {
        if let iterator { api.Py_DecRef(iterator) }
        iterator = nil
    }
}
