// While an app is being imported, a C-level exit() (an extension, ctypes) must not end swsgi silently
// with the app's status: an atexit handler, armed only around the import, writes one line and ends the
// process with `status` instead. Python-level exits (os._exit, sys.exit) are refused in Python itself.
#ifndef CGLIBC_EXIT_GUARD_H
#define CGLIBC_EXIT_GUARD_H
/// Arms (status > 0, `line` written at such an exit, cut to 511 bytes) or disarms (0) the guard; the
/// atexit handler is registered on first use.
int shim_exit_guard(int status, const char *line);
#endif
