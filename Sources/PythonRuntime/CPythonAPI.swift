import CGlibcShim
import Glibc

/// A Python object reference as the C API passes it.
public typealias PyObjectPointer = OpaquePointer

/// Why libpython could not be used: one line for the operator.
public struct PythonLoadError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The CPython functions and objects swsgi calls, found with dlsym in a libpython opened with
/// RTLD_NOW | RTLD_GLOBAL (global, so C extension modules resolve their `Py*` symbols against it).
/// Each is a stable-ABI function of CPython 3.8+, declared in `python_abi.h`. A class: the table is
/// large, and a copy per use would cost more than the calls it makes.
public final class CPythonAPI: @unchecked Sendable {
    public let libraryPath: String

    // Interpreter, GIL and fork.
    public let Py_InitializeEx: py_void_int
    public let Py_IsInitialized: py_int_void
    public let Py_GetVersion: py_cstring_void
    public let PyEval_SaveThread: py_tstate_void
    public let PyEval_RestoreThread: py_void_tstate
    public let PyOS_BeforeFork: py_void_void
    public let PyOS_AfterFork_Parent: py_void_void
    public let PyOS_AfterFork_Child: py_void_void

    // References and errors.
    public let Py_IncRef: py_void_obj
    public let Py_DecRef: py_void_obj
    public let PyErr_Occurred: py_obj_void
    public let PyErr_Clear: py_void_void
    public let PyErr_PrintEx: py_void_int
    public let PyErr_SetString: py_void_obj_cstring
    public let PyErr_ExceptionMatches: py_int_obj
    public let PyErr_Fetch: py_fetch
    public let PyErr_Restore: py_restore
    public let PyErr_CheckSignals: py_int_void
    /// PyGILState_Ensure/Release (PyGILState_STATE is an int enum): take the GIL from code that may or may not hold it.
    public let PyGILState_Ensure: py_int_void
    public let PyGILState_Release: py_void_int

    // Code, modules, attributes, calls, iteration.
    public let Py_CompileString: py_compile
    public let PyEval_EvalCode: py_obj_obj_obj_obj
    public let PyImport_ImportModule: py_obj_cstring
    public let PyObject_GetAttrString: py_obj_obj_cstring
    public let PyObject_SetAttrString: py_int_obj_cstring_obj
    public let PyObject_Call: py_obj_obj_obj_obj
    public let PyObject_CallObject: py_obj_obj_obj
    /// Called through `swsgi_call2` (C variadic).
    public let PyObject_CallFunctionObjArgs: py_call_obj_args
    public let PyObject_GetIter: py_obj_obj
    public let PyIter_Next: py_obj_obj
    public let PyObject_IsTrue: py_int_obj
    public let PyObject_Str: py_obj_obj
    public let PyObject_Type: py_obj_obj
    public let PyObject_IsInstance: py_int_obj_obj
    public let PyCallable_Check: py_int_obj

    // Containers and scalars.
    public let PyDict_New: py_obj_void
    public let PyDict_Copy: py_obj_obj
    public let PyDict_SetItem: py_int_obj_obj_obj
    /// Borrowed reference, nil when absent (no exception set).
    public let PyDict_GetItem: py_obj_obj_obj
    public let PyDict_DelItem: py_int_obj_obj
    /// Stable ABI since 3.2: a traceback (or None) set on an exception instance (TypeError for anything else),
    /// and the one it holds (new reference, nil when none).
    public let PyException_SetTraceback: py_int_obj_obj
    public let PyException_GetTraceback: py_obj_obj
    public let PyTuple_New: py_obj_size
    public let PyTuple_SetItem: py_int_obj_size_obj
    public let PyTuple_GetItem: py_obj_obj_size
    public let PyTuple_Size: py_size_obj
    public let PyList_New: py_obj_size
    public let PyList_Size: py_size_obj
    public let PyList_GetItem: py_obj_obj_size
    public let PyList_GetSlice: py_obj_obj_size_size
    public let PyList_SetItem: py_int_obj_size_obj
    public let PyLong_FromLong: py_obj_long
    public let PyLong_AsSsize_t: py_size_obj
    public let PyBool_FromLong: py_obj_long
    public let PyBytes_FromStringAndSize: py_bytes_from
    public let PyBytes_AsStringAndSize: py_bytes_as
    public let PyUnicode_FromString: py_obj_cstring
    public let PyUnicode_DecodeLatin1: py_decode
    public let PyUnicode_DecodeUTF8: py_decode
    public let PyUnicode_AsLatin1String: py_obj_obj
    public let PyUnicode_AsUTF8String: py_obj_obj
    /// Only on the way to an error message (`Interpreter.encode`): which character a str cannot be encoded with.
    public let PyUnicode_AsEncodedString: py_encode
    public let PyUnicode_Concat: py_obj_obj_obj
    public let PyCFunction_NewEx: py_cfunction_new
    public let PyCapsule_New: py_capsule_new
    public let PyCapsule_GetPointer: py_capsule_pointer
    public let PySys_GetObject: py_obj_cstring

    // Objects exported as data.
    public let none: PyObjectPointer
    public let listType: PyObjectPointer
    public let tupleType: PyObjectPointer
    public let bytesType: PyObjectPointer
    public let strType: PyObjectPointer
    public let excTypeError: PyObjectPointer
    public let excValueError: PyObjectPointer
    public let excAssertionError: PyObjectPointer
    public let excOSError: PyObjectPointer
    public let excSystemExit: PyObjectPointer
    public let excRuntimeError: PyObjectPointer
    public let excBaseException: PyObjectPointer
    /// `Py_OptimizeFlag`, the `-O` level read by Py_InitializeEx (uWSGI's `--optimize` sets it); nil
    /// in a libpython without the legacy global.
    public let optimizeFlag: UnsafeMutablePointer<Int32>?

    /// Opens `path` and resolves every symbol; names the first one missing.
    public init(libraryPath path: String) throws(PythonLoadError) {
        libraryPath = path
        // dlopen of a FIFO blocks forever in open(2), and of a device or folder says nothing useful.
        if path.contains("/") {
            var st = stat()
            guard stat(path, &st) == 0 else { throw PythonLoadError("cannot load libpython \(path): \(String(cString: strerror(errno)))") }
            guard st.st_mode & S_IFMT == S_IFREG else { throw PythonLoadError("cannot load libpython \(path): not a regular file") }
        }
        guard let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "cannot load"
            throw PythonLoadError("cannot load libpython \(path): \(why)")
        }
        func fn<T>(_ name: String, _: T.Type = T.self) throws(PythonLoadError) -> T {
            guard let p = dlsym(h, name) else {
                throw PythonLoadError("\(path) is not a usable libpython (CPython 3.8+ with a shared library): no symbol \(name)")
            }
            return unsafeBitCast(p, to: T.self)
        }
        /// `PyExc_TypeError` and friends are `PyObject *` variables: dlsym gives their address.
        func exported(_ name: String) throws(PythonLoadError) -> PyObjectPointer {
            let p: UnsafeMutableRawPointer = try fn(name)
            guard let o = p.load(as: PyObjectPointer?.self) else { throw PythonLoadError("\(path): \(name) is NULL") }
            return o
        }
        /// `_Py_NoneStruct` and the type objects are the objects themselves.
        func object(_ name: String) throws(PythonLoadError) -> PyObjectPointer {
            let p: UnsafeMutableRawPointer = try fn(name)
            return PyObjectPointer(p)
        }
        Py_InitializeEx = try fn("Py_InitializeEx")
        Py_IsInitialized = try fn("Py_IsInitialized")
        Py_GetVersion = try fn("Py_GetVersion")
        PyEval_SaveThread = try fn("PyEval_SaveThread")
        PyEval_RestoreThread = try fn("PyEval_RestoreThread")
        PyOS_BeforeFork = try fn("PyOS_BeforeFork")
        PyOS_AfterFork_Parent = try fn("PyOS_AfterFork_Parent")
        PyOS_AfterFork_Child = try fn("PyOS_AfterFork_Child")
        Py_IncRef = try fn("Py_IncRef")
        Py_DecRef = try fn("Py_DecRef")
        PyErr_Occurred = try fn("PyErr_Occurred")
        PyErr_Clear = try fn("PyErr_Clear")
        PyErr_PrintEx = try fn("PyErr_PrintEx")
        PyErr_SetString = try fn("PyErr_SetString")
        PyErr_ExceptionMatches = try fn("PyErr_ExceptionMatches")
        PyErr_Fetch = try fn("PyErr_Fetch")
        PyErr_Restore = try fn("PyErr_Restore")
        PyErr_CheckSignals = try fn("PyErr_CheckSignals")
        PyGILState_Ensure = try fn("PyGILState_Ensure")
        PyGILState_Release = try fn("PyGILState_Release")
        Py_CompileString = try fn("Py_CompileString")
        PyEval_EvalCode = try fn("PyEval_EvalCode")
        PyImport_ImportModule = try fn("PyImport_ImportModule")
        PyObject_GetAttrString = try fn("PyObject_GetAttrString")
        PyObject_SetAttrString = try fn("PyObject_SetAttrString")
        PyObject_Call = try fn("PyObject_Call")
        PyObject_CallObject = try fn("PyObject_CallObject")
        PyObject_CallFunctionObjArgs = try fn("PyObject_CallFunctionObjArgs")
        PyObject_GetIter = try fn("PyObject_GetIter")
        PyIter_Next = try fn("PyIter_Next")
        PyObject_IsTrue = try fn("PyObject_IsTrue")
        PyObject_Str = try fn("PyObject_Str")
        PyObject_Type = try fn("PyObject_Type")
        PyObject_IsInstance = try fn("PyObject_IsInstance")
        PyCallable_Check = try fn("PyCallable_Check")
        PyDict_New = try fn("PyDict_New")
        PyDict_Copy = try fn("PyDict_Copy")
        PyDict_SetItem = try fn("PyDict_SetItem")
        PyDict_GetItem = try fn("PyDict_GetItem")
        PyDict_DelItem = try fn("PyDict_DelItem")
        PyException_SetTraceback = try fn("PyException_SetTraceback")
        PyException_GetTraceback = try fn("PyException_GetTraceback")
        PyTuple_New = try fn("PyTuple_New")
        PyTuple_SetItem = try fn("PyTuple_SetItem")
        PyTuple_GetItem = try fn("PyTuple_GetItem")
        PyTuple_Size = try fn("PyTuple_Size")
        PyList_New = try fn("PyList_New")
        PyList_Size = try fn("PyList_Size")
        PyList_GetItem = try fn("PyList_GetItem")
        PyList_GetSlice = try fn("PyList_GetSlice")
        PyList_SetItem = try fn("PyList_SetItem")
        PyLong_FromLong = try fn("PyLong_FromLong")
        PyLong_AsSsize_t = try fn("PyLong_AsSsize_t")
        PyBool_FromLong = try fn("PyBool_FromLong")
        PyBytes_FromStringAndSize = try fn("PyBytes_FromStringAndSize")
        PyBytes_AsStringAndSize = try fn("PyBytes_AsStringAndSize")
        PyUnicode_FromString = try fn("PyUnicode_FromString")
        PyUnicode_DecodeLatin1 = try fn("PyUnicode_DecodeLatin1")
        PyUnicode_DecodeUTF8 = try fn("PyUnicode_DecodeUTF8")
        PyUnicode_AsLatin1String = try fn("PyUnicode_AsLatin1String")
        PyUnicode_AsUTF8String = try fn("PyUnicode_AsUTF8String")
        PyUnicode_AsEncodedString = try fn("PyUnicode_AsEncodedString")
        PyUnicode_Concat = try fn("PyUnicode_Concat")
        PyCFunction_NewEx = try fn("PyCFunction_NewEx")
        PyCapsule_New = try fn("PyCapsule_New")
        PyCapsule_GetPointer = try fn("PyCapsule_GetPointer")
        PySys_GetObject = try fn("PySys_GetObject")
        none = try object("_Py_NoneStruct")
        listType = try object("PyList_Type")
        tupleType = try object("PyTuple_Type")
        bytesType = try object("PyBytes_Type")
        strType = try object("PyUnicode_Type")
        excTypeError = try exported("PyExc_TypeError")
        excValueError = try exported("PyExc_ValueError")
        excAssertionError = try exported("PyExc_AssertionError")
        excOSError = try exported("PyExc_OSError")
        excSystemExit = try exported("PyExc_SystemExit")
        excRuntimeError = try exported("PyExc_RuntimeError")
        excBaseException = try exported("PyExc_BaseException")
        optimizeFlag = dlsym(h, "Py_OptimizeFlag")?.assumingMemoryBound(to: Int32.self)
    }
}
