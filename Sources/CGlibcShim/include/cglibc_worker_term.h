// A worker's SIGTERM handler. It lives in C because it runs in signal context and must decide, with
// async-signal-safe reads only, what this TERM is: harakiri's graceful signal for the request in hand
// (the master marked that request on the scoreboard before signalling), or a request to stop (systemd's
// group TERM, an operator's kill). The first runs the app's handler as before; the second only writes
// a byte to a pipe the worker's event loop watches.
#ifndef CGLIBC_WORKER_TERM_H
#define CGLIBC_WORKER_TERM_H
#include <stdint.h>

/// Installs the handler for SIGTERM (SA_RESTART) and unblocks it. `notify_fd`: the write end of a
/// non-blocking pipe. `harakiri_mark` / `request_number`: the worker's scoreboard cells (the request
/// harakiri fired for, the request in hand), or NULL when harakiri's graceful signal is not SIGTERM.
/// When `chain` is 1, the TERM disposition in place now (the app's handler, or the default) is kept
/// and run for harakiri's TERM; called again, it keeps the chain it has unless the disposition changed.
int shim_worker_term_install(int notify_fd, const volatile int64_t *harakiri_mark,
                             const volatile int64_t *request_number, int chain);
/// 1 once a stop-TERM has arrived (read without a syscall on the request path).
int shim_worker_term_arrived(void);
#endif
