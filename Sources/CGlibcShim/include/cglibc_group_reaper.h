// hupwatch -k: a small process that outlives a SIGKILLed hupwatch just long enough to SIGKILL the process
// groups of its generations. PR_SET_PDEATHSIG reaches only hupwatch's own children; a server's workers
// (gunicorn's) are its children's children and would keep serving.
#ifndef CGLIBC_GROUP_REAPER_H
#define CGLIBC_GROUP_REAPER_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>

extern int pipe2(int fds[2], int flags);

/// Forks the reaper; returns its pid and sets *write_fd (O_CLOEXEC) to the pipe hupwatch tells it about
/// groups on: an int32 pgid to watch, its negation once the group is gone. When the pipe reads EOF
/// (hupwatch exited or died), the reaper SIGKILLs every group still watched and exits. Call only while
/// single-threaded. The child runs C only (async-signal-safe calls) and never returns.
static inline pid_t shim_start_group_reaper(int *write_fd) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    if (pid > 0) {
        close(fds[0]);
        *write_fd = fds[1];
        return pid;
    }
    int rfd = fds[0];
    // Only the read end stays open: every other fd (listeners, sockets, the signalfd) is hupwatch's.
    if (rfd > 0) syscall(SYS_close_range, 0U, (unsigned)rfd - 1, 0U);
    syscall(SYS_close_range, (unsigned)rfd + 1, ~0U, 0U);
    prctl(PR_SET_NAME, "hupwatch-k", 0, 0, 0);
    int32_t groups[256];
    int count = 0;
    for (;;) {
        int32_t v;
        ssize_t n = read(rfd, &v, sizeof v);
        if (n < 0 && errno == EINTR) continue;
        if (n != (ssize_t)sizeof v) break;   /* EOF (or a cut record: hupwatch is gone) */
        if (v > 0) {
            if (count < 256) groups[count++] = v;
        } else {
            for (int i = 0; i < count; i++) {
                if (groups[i] == -v) { groups[i] = groups[--count]; break; }
            }
        }
    }
    for (int i = 0; i < count; i++) kill(-groups[i], SIGKILL);
    _exit(0);
}

#endif
