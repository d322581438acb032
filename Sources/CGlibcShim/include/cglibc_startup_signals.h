// swsgi's master before its event loop exists (binding, a Python app's import that may take seconds):
// TERM, INT, QUIT and HUP are recorded instead of killing it by their default action, which would leave
// its temporary socket behind and say nothing. The loop's start then decides what they mean.
#ifndef CGLIBC_STARTUP_SIGNALS_H
#define CGLIBC_STARTUP_SIGNALS_H
/// Installs the recording handler for SIGTERM, SIGINT, SIGQUIT and SIGHUP (not inherited across exec).
int shim_startup_signals_install(void);
/// Puts back the default disposition of each of those still handled by the recorder (one the app has
/// replaced meanwhile is left for the caller to see), and returns the signals recorded as a bit mask
/// (1 << signal number).
unsigned long shim_startup_signals_release(void);
#endif
