// CPython's stable ABI as swsgi uses it, declared here so that no Python header is needed at build
// time. libpython is dlopen'ed at run time and each function below is found with dlsym; Swift calls
// them through these pointer types. Every function named here is in the limited API of CPython 3.8+
// (PyOS_*Fork* since 3.7), so one binary works with any shared libpython of those versions.
// Objects are opaque: reference counts go through Py_IncRef/Py_DecRef, never the struct fields.
#ifndef SWSGI_PYTHON_ABI_H
#define SWSGI_PYTHON_ABI_H

#include <stddef.h>
#include <sys/types.h>

typedef struct _object PyObject;
typedef struct _ts PyThreadState;
typedef ssize_t Py_ssize_t;

typedef PyObject *(*PyCFunction)(PyObject *self, PyObject *args);

// Layout fixed by the stable ABI (Include/methodobject.h).
typedef struct PyMethodDef {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;

#define swsgi_METH_VARARGS 0x0001
#define swsgi_METH_NOARGS 0x0004
#define swsgi_METH_O 0x0008
#define swsgi_Py_file_input 257

// Interpreter and GIL. PyGILState_Ensure/Release pass PyGILState_STATE, an enum (an int in the ABI):
// py_int_void / py_void_int.
typedef void (*py_void_int)(int);
typedef int (*py_int_void)(void);
typedef void (*py_void_void)(void);
typedef const char *(*py_cstring_void)(void);
typedef PyThreadState *(*py_tstate_void)(void);
typedef void (*py_void_tstate)(PyThreadState *);

// References and errors.
typedef void (*py_void_obj)(PyObject *);
typedef PyObject *(*py_obj_void)(void);
typedef void (*py_void_obj_cstring)(PyObject *, const char *);
typedef int (*py_int_obj)(PyObject *);
typedef void (*py_fetch)(PyObject **, PyObject **, PyObject **);
typedef void (*py_restore)(PyObject *, PyObject *, PyObject *);

// Running code and objects.
typedef PyObject *(*py_compile)(const char *source, const char *filename, int start);
typedef PyObject *(*py_obj_obj)(PyObject *);
typedef PyObject *(*py_obj_obj_obj)(PyObject *, PyObject *);
typedef PyObject *(*py_obj_obj_obj_obj)(PyObject *, PyObject *, PyObject *);
typedef PyObject *(*py_obj_cstring)(const char *);
typedef PyObject *(*py_obj_obj_cstring)(PyObject *, const char *);
typedef int (*py_int_obj_cstring_obj)(PyObject *, const char *, PyObject *);
typedef int (*py_int_obj_obj)(PyObject *, PyObject *);
typedef int (*py_int_obj_obj_obj)(PyObject *, PyObject *, PyObject *);
typedef Py_ssize_t (*py_size_obj)(PyObject *);
typedef PyObject *(*py_obj_size)(Py_ssize_t);
typedef Py_ssize_t (*py_size_obj_only)(PyObject *);
typedef PyObject *(*py_obj_obj_size)(PyObject *, Py_ssize_t);
typedef PyObject *(*py_obj_obj_size_size)(PyObject *, Py_ssize_t, Py_ssize_t);
typedef int (*py_int_obj_size_obj)(PyObject *, Py_ssize_t, PyObject *);
typedef PyObject *(*py_obj_long)(long);

// Bytes and str.
typedef PyObject *(*py_bytes_from)(const char *, Py_ssize_t);
typedef int (*py_bytes_as)(PyObject *, char **, Py_ssize_t *);
typedef PyObject *(*py_decode)(const char *, Py_ssize_t, const char *errors);
typedef PyObject *(*py_encode)(PyObject *, const char *encoding, const char *errors);

// Builtin functions made from C (Swift) callbacks.
typedef PyObject *(*py_cfunction_new)(PyMethodDef *, PyObject *self, PyObject *module);
typedef void (*py_capsule_destructor)(PyObject *);
typedef PyObject *(*py_capsule_new)(void *, const char *, py_capsule_destructor);
typedef void *(*py_capsule_pointer)(PyObject *, const char *);

// How many references an object has. ob_refcnt is PyObject's first field in every build with a GIL
// (Py_REFCNT reads it as a macro in the limited API through 3.13; 3.12's immortal objects keep it a
// Py_ssize_t there). swsgi only compares it with what it saw before, to learn whether an app kept an
// object it was handed; it never changes it.
static inline Py_ssize_t swsgi_refcount(PyObject *o) { return *(const Py_ssize_t *)(const void *)o; }

// PyObject_CallFunctionObjArgs (stable ABI): a call with positional arguments and no tuple made for them. C
// variadic, which Swift cannot call through a pointer: called here with two arguments and the closing NULL.
typedef PyObject *(*py_call_obj_args)(PyObject *callable, ...);
static inline PyObject *swsgi_call2(py_call_obj_args f, PyObject *callable, PyObject *a, PyObject *b) {
    return f(callable, a, b, (PyObject *)0);
}

typedef PyObject *(*PyCFunctionWithKeywords)(PyObject *self, PyObject *args, PyObject *kwargs);
#define swsgi_METH_KEYWORDS 0x0002

// METH_FASTCALL | METH_KEYWORDS (in the stable ABI since 3.10): the arguments in the caller's array, no tuple;
// keyword names in a tuple (NULL when none).
typedef PyObject *(*PyCFunctionFastWithKeywords)(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
#define swsgi_METH_FASTCALL 0x0080

#endif
