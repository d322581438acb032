import Common

let version = "hupwatch \(packageVersion)"

let helpText = """
usage: hupwatch [OPTIONS] -- COMMAND [ARG...]
       hupwatch reload [--wait] [--timeout SEC] (--pid-file F | --status-file F | PID)
       hupwatch status [--json] (--pid-file F | --status-file F | PID)
       hupwatch stop [--wait] [--timeout SEC] (--pid-file F | --status-file F | PID)

Runs COMMAND as its child and stays in the foreground with one stable pid. SIGHUP starts a new
instance (a "generation") of the same command, waits until it is ready, then sends the old one
the reload signal; a new generation that exits or is not ready in time is stopped and the old
one keeps serving. HUPs during a reload are coalesced into one more reload.

Readiness:
  --ready MODE             how a new generation proves it is ready (default: auto)
                             auto          READY=1 on NOTIFY_SOCKET if the command speaks sd_notify
                                           (hupwatch always provides NOTIFY_SOCKET; once any generation
                                           has sent READY=1, later ones must too); otherwise a new
                                           listener accepting at the command's socket path (--socket,
                                           or detected from the command's --socket/--bind unix:);
                                           otherwise the original hupwatch's 1 s warm-up
                             notify        wait for READY=1 (the sd_notify protocol)
                             socket:PATH   a listener with a new inode at PATH takes a connection
                                           off its accept queue (a full backlog is not ready). PATH
                                           is also guarded, for commands (scripts) that hide it
                             http:PATH     GET PATH over the Unix socket answers 2xx
                           Each generation's NOTIFY_SOCKET is a private socket; only the generation's
                           own processes (its process group) can declare it ready.
                             delay:SEC     wait SEC seconds (the original's blind warm-up)
  --ready-timeout SEC      a new generation not ready by then is rolled back (default: 30)
  -w, --warmup-time SEC    same as --ready delay:SEC (original hupwatch)

Stopping the old generation:
  --reload-signal SIG      sent to the old generation once the new one is ready (default: TERM)
  --graceful-timeout SEC   how long the old generation's queued connections may wait to be accepted
                           before the reload signal, then how long it may take to exit before
                           SIGKILL to its whole process group (default: 30)

Sockets:
  --listen [NAME=]ADDRESS  hupwatch binds ADDRESS itself: a Unix socket path, HOST:PORT, [IPv6]:PORT or
                           :PORT (every address). Repeatable: every generation gets the listeners as
                           fds 3, 4, ... with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (the NAMEs;
                           systemd socket activation). Never closed across reloads; Unix paths are
                           removed at exit. An address a live listener serves is refused, never stolen.
  --socket-mode MODE       permissions of the --listen socket (default: 0660)
  --socket PATH            the Unix socket the command binds itself (rebind mode); detected from
                           the command when not given. Used by the path guard and by auto readiness.
  --no-rewrite             rewrite mode is on when the socket path is in the command line (--bind
                           unix:, -b unix:, --socket, -s, --http-socket, --uwsgi-socket): each
                           generation binds a private path beside it (.NAME.gN), and the public path
                           is pointed at a generation atomically once its own listener accepts, so it
                           is never missing and an old generation never removes it. This turns it off.
  --no-guard               do not guard the socket path. The guard keeps a hidden hard link to the
                           serving generation's socket and puts the path back the moment an exiting
                           server (gunicorn, uWSGI) removes it.

Process handling:
  --on-exit exit|restart   when the serving generation dies outside a reload: exit with its status
                           (default), or restart it: at once, then, for a crash within 10 s of the
                           last restart (a crash loop), after a back-off doubling from 0.5 s to 30 s
  -k, --kill-at-exit       every generation's whole process group gets SIGKILL when hupwatch dies,
                           even by SIGKILL
  --notify-fd N            s6 readiness: write a newline on fd N once the first generation is ready
                           (read from ./notification-fd in an s6 service directory when not given)
  --chdir DIR              the command's working directory, resolved anew at every spawn (so a
                           `current -> releases/N` symlink switch plus HUP runs the new release)
  --pid-file PATH          write hupwatch's pid there; removed at exit
  --status-file PATH       JSON rewritten atomically at every change: hupwatch pid, each live
                           generation's number, pid and state, the last 20 reloads' outcome, reason
                           and duration

At start hupwatch logs which protection keeps the socket path alive across reloads: --listen
(it owns the listener), the guard on a known path, or none (with how to get one).

Output:
  -q, --quiet              no log lines of hupwatch's own (the command's output is untouched)
  -v, --verbose            more log lines (readiness probes, reaped descendants)
  -h, --help               this text
  --version                print the version

Signals: HUP reloads. TERM, INT and QUIT go to every live generation; hupwatch waits for them
(--graceful-timeout, then SIGKILL) and exits with the serving generation's status (128+N for a
death by signal N). USR1, USR2, TTIN, TTOU and WINCH go to the serving generation's main pid.

Control verbs (over hupwatch's control socket; the status file names it, a pid is looked up in /proc):
  reload                   start a reload; with --wait, wait for the outcome of that reload (a request
                           during a reload joins the one queued after it): 0 completed, 1 rolled back
                           (reason on stderr), 124 timed out (--timeout, default 300s), 3 unreachable
  status                   generations, pids, states and the last reloads (--json: the status document);
                           exit 0 only while a ready generation serves
  stop                     stop hupwatch as SIGTERM does; with --wait, return once it is gone

Exit codes: the serving generation's status; 2 bad command line; 3 bad --chdir, socket folder
missing, socket path in use or pid file unwritable; 126 command not executable; 127 not found.
"""
