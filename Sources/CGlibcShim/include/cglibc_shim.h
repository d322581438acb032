// What `import Glibc` leaves out, reached through glibc's own headers only.
// Macros and variadic functions are wrapped in static inline functions Swift can call.
#ifndef CGLIBC_SHIM_H
#define CGLIBC_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <stddef.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <pthread.h>
#include <sys/mman.h>
#include "cglibc_group_reaper.h"

// Declared here rather than through _GNU_SOURCE, which would make this module's glibc structs
// differ from the ones `import Glibc` sees.
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
extern int pipe2(int fds[2], int flags);

// --- wait status macros ---
static inline int shim_WIFEXITED(int s) { return WIFEXITED(s); }
static inline int shim_WEXITSTATUS(int s) { return WEXITSTATUS(s); }
static inline int shim_WIFSIGNALED(int s) { return WIFSIGNALED(s); }
static inline int shim_WTERMSIG(int s) { return WTERMSIG(s); }

// --- fds ---
static inline int shim_pipe2_cloexec(int fds[2], int nonblock) {
    return pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}
static inline int shim_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
static inline int shim_open(const char *path, int flags, int mode) { return open(path, flags, mode); }
static inline int shim_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }
static inline int shim_socket(int domain, int type, int protocol) { return socket(domain, type, protocol); }
/// Marks every fd >= first close-on-exec (close_range, Linux 5.11+); returns -1/errno when unsupported.
static inline int shim_cloexec_from(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
}

/// sendfile(2) from `in_fd` at `*offset` (advanced) to a socket.
static inline ssize_t shim_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    return sendfile(out_fd, in_fd, offset, count);
}

// --- signals ---
static inline int shim_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }
static inline int shim_sigrtmax(void) { return SIGRTMAX; }
/// Reads one signalfd record; returns the signal number (0 when nothing is pending), or -1 with errno.
static inline int shim_read_signalfd(int fd, int *sender_pid) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if (n != sizeof info) { errno = EIO; return -1; }
    if (sender_pid) *sender_pid = (int)info.ssi_pid;
    return (int)info.ssi_signo;
}
static inline int shim_sigaction_default(int sig) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = SIG_DFL; sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}
/// 1 when `sig` has its default disposition, 0 when not, -1 with errno.
static inline int shim_signal_is_default(int sig) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0) return -1;
    return (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) ? 1 : 0;
}
static inline int shim_sigaction_ignore(int sig) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = SIG_IGN; sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

/// Installs a plain handler (SA_RESTART, nothing blocked meanwhile) and unblocks the signal.
static inline int shim_install_handler(int sig, void (*handler)(int)) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = handler; sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) return -1;
    sigset_t one; sigemptyset(&one); sigaddset(&one, sig);
    return sigprocmask(SIG_UNBLOCK, &one, NULL);
}
/// Writes to a reader that went away must fail with EPIPE, not kill the process.
static inline int shim_ignore_sigpipe(void) { return shim_sigaction_ignore(SIGPIPE); }

// --- timers (CLOCK_MONOTONIC, absolute nanoseconds) ---
static inline int shim_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }
/// Arms the timer to fire once at `at_ns` on CLOCK_MONOTONIC; 0 disarms it.
static inline int shim_timerfd_arm(int fd, uint64_t at_ns) {
    struct itimerspec its; memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000ULL);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000ULL);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
}
static inline uint64_t shim_monotonic_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

// --- process control ---
static inline int shim_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
static inline int shim_set_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
static inline int shim_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }
// sched_setaffinity with CPU_SET, both macros behind _GNU_SOURCE: the calling thread on these CPUs.
extern int sched_setaffinity(pid_t pid, size_t size, const void *mask);
static inline int shim_set_cpu_affinity(const int *cpus, int count) {
    unsigned long mask[1024 / (8 * sizeof(unsigned long))];
    memset(mask, 0, sizeof mask);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= 1024) { errno = EINVAL; return -1; }
        mask[cpus[i] / (8 * sizeof(unsigned long))] |= 1UL << (cpus[i] % (8 * sizeof(unsigned long)));
    }
    return sched_setaffinity(0, sizeof mask, mask);
}

// --- inotify ---
static inline int shim_inotify_init(void) { return inotify_init1(IN_CLOEXEC | IN_NONBLOCK); }
static inline uint32_t shim_IN_DELETE(void) { return IN_DELETE; }
static inline uint32_t shim_IN_MOVED_FROM(void) { return IN_MOVED_FROM; }
static inline uint32_t shim_IN_CREATE(void) { return IN_CREATE; }
static inline uint32_t shim_IN_MOVED_TO(void) { return IN_MOVED_TO; }
static inline uint32_t shim_IN_IGNORED(void) { return IN_IGNORED; }
static inline uint32_t shim_IN_Q_OVERFLOW(void) { return IN_Q_OVERFLOW; }
static inline uint32_t shim_IN_ATTRIB(void) { return IN_ATTRIB; }
static inline uint32_t shim_IN_MASK_ADD(void) { return IN_MASK_ADD; }
/// An anonymous file in `dir` (O_TMPFILE): never visible, gone when closed. (O_TMPFILE needs
/// _GNU_SOURCE in glibc's headers; its value is the kernel's, __O_TMPFILE | O_DIRECTORY.)
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
static inline int shim_open_tmpfile(const char *dir) { return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); }
static inline uint32_t shim_IN_CLOSE_WRITE(void) { return IN_CLOSE_WRITE; }

// --- epoll ---
static inline int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int shim_epoll_ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev; ev.events = events; ev.data.u64 = data; return epoll_ctl(ep, op, fd, &ev);
}
/// Waits for up to `max` events, writing their data words and event masks into the two arrays.
static inline int shim_epoll_wait(int ep, uint64_t *datas, uint32_t *masks, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(ep, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { datas[i] = evs[i].data.u64; masks[i] = evs[i].events; }
    return n;
}

// --- sockets ---
/// Fills a sockaddr_un for `path` (a leading '@' means the abstract namespace); returns its length or -1.
static inline int shim_sockaddr_un(struct sockaddr_un *sa, const char *path) {
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof sa->sun_path) return -1;
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@') { sa->sun_path[0] = '\0'; return (int)(offsetof(struct sockaddr_un, sun_path) + n); }
    return (int)sizeof *sa;
}
static inline int shim_bind_unix(int fd, const char *path) {
    struct sockaddr_un sa; int len = shim_sockaddr_un(&sa, path);
    if (len < 0) { errno = ENAMETOOLONG; return -1; }
    return bind(fd, (struct sockaddr *)&sa, (socklen_t)len);
}
static inline int shim_connect_unix(int fd, const char *path) {
    struct sockaddr_un sa; int len = shim_sockaddr_un(&sa, path);
    if (len < 0) { errno = ENAMETOOLONG; return -1; }
    return connect(fd, (struct sockaddr *)&sa, (socklen_t)len);
}
static inline int shim_sendto_unix(int fd, const void *buf, size_t n, const char *path) {
    struct sockaddr_un sa; int len = shim_sockaddr_un(&sa, path);
    if (len < 0) { errno = ENAMETOOLONG; return -1; }
    return (int)sendto(fd, buf, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)len);
}
static inline int shim_send(int fd, const void *buf, size_t n) { return (int)send(fd, buf, n, MSG_NOSIGNAL); }
static inline int shim_sun_path_max(void) { return (int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1; }

/// Reads one unix_diag answer's attributes: the file inode it is bound to (UNIX_DIAG_VFS) and its
/// accept queue (UNIX_DIAG_RQLEN: queued now, backlog maximum). Absent ones are left untouched.
static inline void shim_unix_diag_attrs(struct nlmsghdr *h, unsigned long *vfs_ino, int *queued, unsigned int *backlog_max) {
    struct unix_diag_msg *m = NLMSG_DATA(h);
    struct rtattr *a = (struct rtattr *)(m + 1);
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == UNIX_DIAG_VFS && vfs_ino) {
            *vfs_ino = ((struct unix_diag_vfs *)RTA_DATA(a))->udiag_vfs_ino;
        } else if (a->rta_type == UNIX_DIAG_RQLEN) {
            struct unix_diag_rqlen *rq = RTA_DATA(a);
            if (queued) *queued = (int)rq->udiag_rqueue;
            if (backlog_max) *backlog_max = rq->udiag_wqueue;
        }
    }
}

/// Opens a sock_diag socket and sends one AF_UNIX request: the fd to read the answer from, or -1/errno.
static inline int shim_unix_diag_send(unsigned int inode, unsigned int states, unsigned int show, int dump) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    struct { struct nlmsghdr nlh; struct unix_diag_req req; } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = states;
    msg.req.udiag_ino = inode;
    msg.req.udiag_show = show;
    msg.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (send(fd, &msg, sizeof msg, 0) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/// The number of connections queued on a listening Unix socket (sock_diag UNIX_DIAG_RQLEN), or -1/errno.
static inline int shim_unix_listen_queue(unsigned int inode, unsigned int *backlog_max) {
    int fd = shim_unix_diag_send(inode, 1 << 10 /* TCP_LISTEN */, UDIAG_SHOW_RQLEN, 0);
    if (fd < 0) return -1;
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    int e = errno; close(fd); errno = e;
    if (n < 0) return -1;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) { struct nlmsgerr *er = NLMSG_DATA(h); errno = -er->error; return -1; }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
        int queued = -1;
        shim_unix_diag_attrs(h, NULL, &queued, backlog_max);
        if (queued >= 0) return queued;
    }
    errno = ENOENT;
    return -1;
}

/// The accept queue of the listening Unix socket bound to the file whose inode is `vfs_ino` (a sock_diag
/// dump of listeners with UDIAG_SHOW_VFS, matched by that inode): queued connections, or -1 with errno
/// (ENOENT when no listener is bound to that file any more).
static inline int shim_unix_listen_queue_by_file_inode(unsigned long vfs_ino) {
    int fd = shim_unix_diag_send(0, 1 << 10 /* TCP_LISTEN */, UDIAG_SHOW_VFS | UDIAG_SHOW_RQLEN, 1);
    if (fd < 0) return -1;
    int found = -1, done = 0;
    static __thread char buf[32768];
    while (!done) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) { if (errno == EINTR) continue; int e = errno; close(fd); errno = e; return -1; }
        if (n == 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) { done = 1; break; }
            if (h->nlmsg_type == NLMSG_ERROR) { struct nlmsgerr *er = NLMSG_DATA(h); close(fd); errno = -er->error; return -1; }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
            unsigned long ino = 0;
            int queued = -1;
            shim_unix_diag_attrs(h, &ino, &queued, NULL);
            if (ino == vfs_ino) found = queued;
        }
    }
    close(fd);
    if (found < 0) { errno = ENOENT; return -1; }
    return found;
}

/// Bytes written to a connected TCP socket that the peer has not acknowledged yet, unsent ones included
/// (SIOCOUTQ, a variadic ioctl); -1 with errno.
static inline int shim_unacknowledged_bytes(int fd) {
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) != 0) return -1;
    return n;
}

/// A TCP listener's accept queue from TCP_INFO (tcpi_unacked: queued now, tcpi_sacked: backlog).
static inline int shim_tcp_listen_queue(int fd, unsigned int *backlog_max) {
    struct tcp_info info; socklen_t len = sizeof info; memset(&info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
    if (backlog_max) *backlog_max = info.tcpi_sacked;
    return (int)info.tcpi_unacked;
}

// --- spawning ---
/// Everything the forked child needs, prepared by the parent so the child only patches bytes and calls
/// async-signal-safe functions between fork and execve.
struct shim_spawn {
    const char *path;          /* resolved executable */
    char *const *argv;
    char *const *envp;
    const char *chdir;         /* NULL: stay */
    const int *listen_fds;     /* listen_count fds, dup2'ed onto 3, 4, ...; each must be >= 3 + listen_count */
    int listen_count;
    char *listen_pid_digits;   /* NULL, or 20 bytes inside envp's "LISTEN_PID=" entry to fill with the pid */
    int pdeathsig;             /* 0: none */
    int parent_pid;            /* for the PDEATHSIG race check */
    int err_fd;                /* CLOEXEC pipe: the child writes {stage, errno} there if it cannot exec */
    int stdout_fd;             /* 0: keep fd 1; else dup2'ed onto fd 1 (a pipe the parent reads) */
};

enum { SHIM_STAGE_CHDIR = 1, SHIM_STAGE_DUP = 2, SHIM_STAGE_EXEC = 3, SHIM_STAGE_SETUP = 4 };

static inline void shim_child_fail(int fd, int stage) {
    int rec[2] = { stage, errno };
    ssize_t r = write(fd, rec, sizeof rec); (void)r;
    _exit(127);
}

/// fork + execve with a clean signal state, its own process group, an optional listener on fd 3 and
/// LISTEN_PID set to the child's own pid. Returns the pid, or -1 with errno if fork failed.
static inline pid_t shim_fork_exec(const struct shim_spawn *s) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* child: only async-signal-safe calls from here on */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        /* rt_sigaction directly: glibc's sigaction refuses its internal signals 32 and 33, which a parent's
           posix_spawn leaves ignored. An all-zero kernel sigaction is SIG_DFL, no flags, empty mask. */
        unsigned long ksa[4] = { 0, 0, 0, 0 };
        syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t)(NSIG / 8));
    }
    sigset_t none; sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) shim_child_fail(s->err_fd, SHIM_STAGE_SETUP);
    if (setpgid(0, 0) != 0) shim_child_fail(s->err_fd, SHIM_STAGE_SETUP);
    if (s->pdeathsig) {
        if (prctl(PR_SET_PDEATHSIG, s->pdeathsig, 0, 0, 0) != 0) shim_child_fail(s->err_fd, SHIM_STAGE_SETUP);
        if (getppid() != s->parent_pid) _exit(128 + s->pdeathsig); /* the parent died before prctl */
    }
    if (s->chdir && chdir(s->chdir) != 0) shim_child_fail(s->err_fd, SHIM_STAGE_CHDIR);
    if (s->stdout_fd > 0 && s->stdout_fd != 1 && dup2(s->stdout_fd, 1) != 1) shim_child_fail(s->err_fd, SHIM_STAGE_DUP);
    for (int i = 0; i < s->listen_count; i++) {
        int target = 3 + i;
        if (s->listen_fds[i] == target) {
            if (fcntl(target, F_SETFD, 0) != 0) shim_child_fail(s->err_fd, SHIM_STAGE_DUP);
        } else if (dup2(s->listen_fds[i], target) != target) shim_child_fail(s->err_fd, SHIM_STAGE_DUP);
    }
    /* fds the parent inherited without CLOEXEC must not leak into the command */
    syscall(SYS_close_range, 3U + (unsigned)s->listen_count, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
    if (s->listen_pid_digits) {
        char tmp[20]; int n = 0; unsigned long v = (unsigned long)getpid();
        do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 19);
        for (int i = 0; i < n; i++) s->listen_pid_digits[i] = tmp[n - 1 - i];
        s->listen_pid_digits[n] = '\0';
    }
    execve(s->path, s->argv, s->envp);
    shim_child_fail(s->err_fd, SHIM_STAGE_EXEC);
    return -1;
}


// --- services shared memory: process-shared robust mutexes, atomics, record channels ---
// A robust mutex held by a process that dies (SIGKILL by harakiri) is handed to the next locker with
// EOWNERDEAD instead of staying locked forever; PTHREAD_PROCESS_SHARED lets it live in MAP_SHARED memory.
static inline int shim_robust_mutex_init(void *m) {
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc) return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    // Error-checking: locking twice from one process fails with EDEADLK instead of hanging it.
    if (rc == 0) rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (rc == 0) rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}
static inline int shim_mutex_size(void) { return (int)sizeof(pthread_mutex_t); }
/// 0, EOWNERDEAD (the caller holds it and must repair, then call shim_mutex_consistent) or an error.
static inline int shim_mutex_lock(void *m) { return pthread_mutex_lock((pthread_mutex_t *)m); }
static inline int shim_mutex_trylock(void *m) { return pthread_mutex_trylock((pthread_mutex_t *)m); }
static inline int shim_mutex_unlock(void *m) { return pthread_mutex_unlock((pthread_mutex_t *)m); }
static inline int shim_mutex_consistent(void *m) { return pthread_mutex_consistent((pthread_mutex_t *)m); }
static inline int shim_EOWNERDEAD(void) { return EOWNERDEAD; }
static inline int shim_ENOTRECOVERABLE(void) { return ENOTRECOVERABLE; }

static inline uint64_t shim_load_acquire_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }
static inline void shim_store_release_u64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE); }
static inline int64_t shim_fetch_add_i64(void *p, int64_t d) { return __atomic_fetch_add((int64_t *)p, d, __ATOMIC_SEQ_CST); }
static inline int32_t shim_load_i32(const void *p) { return __atomic_load_n((const int32_t *)p, __ATOMIC_SEQ_CST); }
static inline void shim_store_i32(void *p, int32_t v) { __atomic_store_n((int32_t *)p, v, __ATOMIC_SEQ_CST); }
static inline int shim_cas_i32(void *p, int32_t expected, int32_t desired) {
    return __atomic_compare_exchange_n((int32_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline int shim_cas_i64(void *p, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n((int64_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// Records between processes travel over SOCK_SEQPACKET pairs, made in Swift (Posix/RecordChannel.swift).
static inline void *shim_map_shared(size_t n) { return mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0); }
static inline int shim_map_failed(void *p) { return p == MAP_FAILED; }

// --- sd_notify datagrams with the sender's credentials ---
// struct ucred and SCM_CREDENTIALS need _GNU_SOURCE (see above); the kernel ABI is fixed, so spell it out.
struct shim_ucred { pid_t pid; uid_t uid; gid_t gid; };
#define SHIM_SCM_CREDENTIALS 2

static inline int shim_enable_passcred(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
}

// One datagram without blocking; *sender_pid is the kernel-checked pid of the sender (0 if none came).
// Any file descriptors attached (SCM_RIGHTS) are closed at once: nobody here asked for them.
static inline ssize_t shim_recv_with_sender(int fd, void *buf, size_t len, pid_t *sender_pid) {
    struct iovec iov = { buf, len };
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(struct shim_ucred)) + CMSG_SPACE(sizeof(int) * 64)]; } control;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.bytes;
    m.msg_controllen = sizeof control.bytes;
    *sender_pid = 0;
    ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h != NULL; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET) continue;
        if (h->cmsg_type == SHIM_SCM_CREDENTIALS && h->cmsg_len >= CMSG_LEN(sizeof(struct shim_ucred))) {
            struct shim_ucred u;
            memcpy(&u, CMSG_DATA(h), sizeof u);
            *sender_pid = u.pid;
        } else if (h->cmsg_type == SCM_RIGHTS) {
            size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                close(passed);
            }
        }
    }
    if (m.msg_flags & MSG_CTRUNC) *sender_pid = 0; // credentials may have been cut off: trust nothing
    return n;
}

/// Whether the listener has taken our connected Unix stream socket `fd` off its accept queue: 1 accepted,
/// 0 still queued, -1 with errno on error. Until accept(2) the server side of the connection has no
/// socket inode, so sock_diag reports our peer's inode as 0 (UDIAG_SHOW_PEER); a peer that accepted and
/// already closed shows as EOF on a peek.
static inline int shim_unix_connection_accepted(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    int nl = shim_unix_diag_send((unsigned int)st.st_ino, ~0U /* any state */, UDIAG_SHOW_PEER, 0);
    if (nl < 0) return -1;
    char buf[1024];
    ssize_t n;
    do { n = recv(nl, buf, sizeof buf, 0); } while (n < 0 && errno == EINTR);
    int e = errno;
    close(nl);
    if (n < 0) { errno = e; return -1; }
    unsigned int peer = 0;
    int answered = 0;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) { struct nlmsgerr *er = NLMSG_DATA(h); if (er->error) { errno = -er->error; return -1; } continue; }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
        answered = 1;
        struct unix_diag_msg *m = NLMSG_DATA(h);
        struct rtattr *a = (struct rtattr *)(m + 1);
        int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
        for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type == UNIX_DIAG_PEER) memcpy(&peer, RTA_DATA(a), sizeof peer);
        }
    }
    if (!answered) { errno = ENOENT; return -1; }
    if (peer != 0) return 1;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r >= 0) return 1;                 /* EOF or data: someone on the other end took it */
    if (errno == EAGAIN) return 0;        /* still waiting in the queue */
    return -1;                            /* reset: the listener went away */
}

#endif
