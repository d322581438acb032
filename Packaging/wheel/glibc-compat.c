// Linked only into the wheel's executables (Packaging/wheel/build), never into the package's targets.
//
// The wheel links the C++ runtime statically (libstdc++.a, libgcc_eh.a) so that it needs nothing but glibc.
// Built on glibc 2.36, three references in those archives and in Swift's static libraries would raise the floor
// above glibc 2.34, the floor every binary linked here has anyway (__libc_start_main@GLIBC_2.34 from crt1.o,
// pthread and dl functions that moved into libc in 2.34). Each is defined here with the same behaviour
// using only older glibc functions. Hidden: the executable's own references bind to these at link time,
// and nothing is exported, so a libpython or extension module loaded later still gets glibc's versions.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#define HIDDEN __attribute__((visibility("hidden")))

// hypotf@GLIBC_2.35 (Swift's Glibc overlay, libswiftGlibc.a): in double precision x*x + y*y neither
// overflows nor underflows for any pair of floats, so one rounding to float is right in all but rare ties.
HIDDEN float hypotf(float x, float y) {
    if (isinf(x) || isinf(y)) return INFINITY;  // C99 F.10.4.3: hypot(±inf, NaN) is +inf
    double dx = x, dy = y;
    return (float)__builtin_sqrt(dx * dx + dy * dy);
}

// arc4random@GLIBC_2.36 (libstdc++'s std::random_device): getrandom(2) (glibc 2.25) blocks only until
// the kernel's pool is first initialised, as glibc's arc4random does.
HIDDEN uint32_t arc4random(void) {
    uint32_t value;
    size_t filled = 0;
    while (filled < sizeof value) {
        ssize_t n = getrandom((char *)&value + filled, sizeof value - filled, 0);
        if (n > 0) filled += (size_t)n;
        else if (n < 0 && errno != EINTR) __builtin_trap();  // glibc's arc4random aborts too: no fallback
    }
    return value;
}

struct find_request { uintptr_t address; struct dl_find_object *result; };

static int find_in_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct find_request *request = data;
    uintptr_t low = UINTPTR_MAX, high = 0;
    int contains = 0;
    void *eh_frame = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            uintptr_t end = start + ph->p_memsz;
            if (start < low) low = start;
            if (end > high) high = end;
            if (request->address >= start && request->address < end) contains = 1;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh_frame = (void *)start;
        }
    }
    if (!contains) return 0;
    memset(request->result, 0, sizeof *request->result);
    request->result->dlfo_map_start = (void *)low;
    request->result->dlfo_map_end = (void *)high;
    request->result->dlfo_eh_frame = eh_frame;
    return 1;
}

// _dl_find_object@GLIBC_2.35 (libgcc_eh's unwinder, which then never falls back to dl_iterate_phdr):
// the same answer found with dl_iterate_phdr, as libgcc did itself before glibc 2.35. Only the fields the
// unwinder reads are filled (x86_64 has no dlfo_eh_dbase); dlfo_link_map stays NULL.
HIDDEN int _dl_find_object(void *address, struct dl_find_object *result) {
    struct find_request request = { (uintptr_t)address, result };
    return dl_iterate_phdr(find_in_object, &request) ? 0 : -1;
}
