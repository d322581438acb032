// Calls swsgi's hostile-input and privilege hardening needs that `import Glibc` leaves out:
// getrandom, openat2 (RESOLVE_BENEATH), renameat2 (RENAME_NOREPLACE), setres[ug]id.
#ifndef CGLIBC_HARDENING_H
#define CGLIBC_HARDENING_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/openat2.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/// Fills `buf` with `len` bytes from the kernel's CSPRNG; returns the count or -1/errno.
static inline long shim_getrandom(void *buf, size_t len) { return syscall(SYS_getrandom, buf, len, 0); }

/// openat2 confined to `dirfd`: no `..` above it, no absolute paths, no symlink leading outside, no
/// /proc magic links (the kernel resolves and checks in one step). -1/ENOSYS on kernels before 5.6.
static inline int shim_openat2_beneath(int dirfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/// rename(2) that fails with EEXIST instead of replacing what is at `to`.
static inline int shim_rename_noreplace(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/// Swaps what `a` and `b` name, atomically (both must exist): hupwatch puts a socket at its public path
/// this way, looks at what it displaced, and swaps back when that was not its own.
static inline int shim_rename_exchange(const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

/// flock(2) with LOCK_EX | LOCK_NB: 0, or -1 with EWOULDBLOCK when another open file holds it.
static inline int shim_flock_exclusive_nonblocking(int fd) { return flock(fd, LOCK_EX | LOCK_NB); }

/// O_PATH (a _GNU_SOURCE name): an fd that names a directory for openat without opening it for reading.
static inline int shim_O_PATH(void) { return 010000000; }

static inline int shim_setresuid(uid_t r, uid_t e, uid_t s) { return (int)syscall(SYS_setresuid, r, e, s); }
static inline int shim_setresgid(gid_t r, gid_t e, gid_t s) { return (int)syscall(SYS_setresgid, r, e, s); }
static inline int shim_getresuid(uid_t *r, uid_t *e, uid_t *s) { return (int)syscall(SYS_getresuid, r, e, s); }
static inline int shim_getresgid(gid_t *r, gid_t *e, gid_t *s) { return (int)syscall(SYS_getresgid, r, e, s); }
static inline int shim_setgroups(size_t n, const gid_t *list) { return (int)syscall(SYS_setgroups, n, list); }

#endif
