#include "cglibc_worker_term.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int term_notify_fd = -1;
static const volatile int64_t *term_harakiri_mark;
static const volatile int64_t *term_request_number;
static struct sigaction term_chain;
static volatile sig_atomic_t term_arrived;

static void worker_term(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    int64_t marked = term_harakiri_mark ? *term_harakiri_mark : 0;
    if (marked > 0 && term_request_number && marked == *term_request_number) {
        // Harakiri's graceful signal for the request in hand: what TERM did before this handler existed.
        if (term_chain.sa_flags & SA_SIGINFO) {
            term_chain.sa_sigaction(sig, info, context);
        } else if (term_chain.sa_handler == SIG_DFL) {
            // No handler of the app's: TERM ends the worker, as its default action always did here.
            signal(sig, SIG_DFL);
            raise(sig);
        } else if (term_chain.sa_handler != SIG_IGN) {
            term_chain.sa_handler(sig);
        }
    } else {
        term_arrived = 1;
        char one = 1;
        if (term_notify_fd >= 0) { ssize_t n = write(term_notify_fd, &one, 1); (void)n; }
    }
    errno = saved;
}

int shim_worker_term_install(int notify_fd, const volatile int64_t *harakiri_mark,
                             const volatile int64_t *request_number, int chain) {
    struct sigaction now;
    if (sigaction(SIGTERM, NULL, &now) != 0) return -1;
    if (!((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == worker_term)) {
        if (chain) term_chain = now; else { memset(&term_chain, 0, sizeof term_chain); term_chain.sa_handler = SIG_DFL; }
    }
    term_notify_fd = notify_fd;
    term_harakiri_mark = harakiri_mark;
    term_request_number = request_number;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = worker_term;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGTERM);
    return sigprocmask(SIG_UNBLOCK, &one, NULL);
}

int shim_worker_term_arrived(void) { return term_arrived; }
