#include "cglibc_startup_signals.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t recorded_mask;
static const int recorded_signals[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP };

static void record(int sig) { recorded_mask |= (sig_atomic_t)(1 << sig); }

int shim_startup_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < sizeof recorded_signals / sizeof recorded_signals[0]; i++) {
        if (sigaction(recorded_signals[i], &sa, NULL) != 0) return -1;
    }
    return 0;
}

unsigned long shim_startup_signals_release(void) {
    for (unsigned i = 0; i < sizeof recorded_signals / sizeof recorded_signals[0]; i++) {
        struct sigaction now;
        if (sigaction(recorded_signals[i], NULL, &now) != 0) continue;
        if (!(now.sa_flags & SA_SIGINFO) && now.sa_handler == record) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigemptyset(&dfl.sa_mask);
            sigaction(recorded_signals[i], &dfl, NULL);
        }
    }
    return (unsigned long)recorded_mask;
}
