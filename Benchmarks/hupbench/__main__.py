"""python3 -m hupbench reload|throughput|workers|all"""
import contextlib
import ctypes
import errno
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from .common import *  # noqa: F401,F403
from .common import TMP
from .report import idle_table, reload_table, throughput_table, workers_tables
from .scenarios.reload import ab_reload_row, idle_cost, reload_row, reload_specs
from .scenarios.throughput import median_round, throughput_row
from .scenarios.workers import harakiri_row, recycle_row


def versions():
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return ((r.stdout or "") + (r.stderr or "")).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            return f"unavailable ({e.__class__.__name__})"
    v = {"nginx": first_line([NGINX, "-v"]), "wrk": first_line([WRK, "-v"]),
         "hupwatch": first_line([HUPWATCH, "--version"]), "swsgi": first_line([SWSGI, "--version"])}
    v["gunicorn"] = first_line([GUNICORN, "--version"]) if GUNICORN else "not installed"
    v["uwsgi"] = first_line([UWSGI] + UWSGI_ARGS + ["--version"]) if UWSGI else "not installed"
    if HUPWATCH_PY:
        with open(HUPWATCH_PY, "rb") as f:
            shebang = f.readline().decode().strip()
        py = shebang[2:].split()[0] if shebang.startswith("#!") else sys.executable
        v["hupwatch (Python)"] = first_line([py, "-c", "import hupwatch; print('hupwatch', hupwatch.__version__)"])
    else:
        v["hupwatch (Python)"] = "not installed"
    v["cores"] = str(os.cpu_count())
    v["kernel"] = os.uname().release
    return v


def main():
    section = sys.argv[1] if len(sys.argv) > 1 else "all"
    if section not in ("reload", "throughput", "workers", "all"):
        sys.exit("usage: python3 -m hupbench [reload|throughput|workers|all]")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (nginx workers run as root to reach the private sockets)")
    for exe in (HUPWATCH, SWSGI, TESTCHILD):
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench: {exe} missing: build with swift build -c release --static-swift-stdlib --scratch-path .build-bench")
    os.makedirs(LOGS, exist_ok=True)
    latest = os.path.join(HERE, "out", "latest")
    if os.path.islink(latest) or not os.path.exists(latest):
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(STAMP, latest)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned servers come back to us
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    for var in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "NGINX"):
        os.environ.pop(var, None)  # nothing of the caller's own supervision leaks into the servers
    with open(os.path.join(TMP, "app.py"), "w") as f:
        f.write(APP_PY)
    settings = {"RELOADS": RELOADS, "DURATION": DURATION, "IDLE_SECONDS": IDLE_SECONDS,
                "RELOAD_TIMEOUT": RELOAD_TIMEOUT, "NGINX_WORKERS": NGINX_WORKERS, "ROUNDS": ROUNDS, "ROWS": ROWS,
                "SERVERS": ",".join(SERVERS), "connections": CONNECTIONS, "threads": THREADS}
    ver = versions()
    header = (f"Benchmarks {STAMP}: {ver['cores']} cores, kernel {ver['kernel']}, nginx worker_processes "
              f"{NGINX_WORKERS}, wrk -t{THREADS} -c{CONNECTIONS}\n"
              + "\n".join(f"  {k}: {v}" for k, v in ver.items() if k not in ("cores", "kernel")))
    tables = [header]
    print(header, flush=True)
    with open(os.path.join(OUT, "settings.json"), "w") as f:
        json.dump({"settings": settings, "versions": ver}, f, indent=2)
    try:
        if section in ("reload", "all"):
            specs = reload_specs()
            rows = [reload_row(k, specs[k]) for k in sorted(specs) if k in ROWS]
            ab_row = ab_reload_row() if "n" in ROWS else None
            idle = idle_cost()
            with open(os.path.join(OUT, "reload.json"), "w") as f:
                json.dump({"rows": rows, "ab": ab_row, "idle": idle}, f, indent=1)
            text = (f"\n== reload: {RELOADS} HUPs under wrk -c{CONNECTIONS} through nginx (no upstream keep-alive) ==\n"
                    + reload_table(rows)
                    + (f"\n\n== row n: {ab_row['setup']} ==\n"
                       + (f"error: {ab_row['error']}" if "error" in ab_row else
                          f"requests {ab_row['requests']}, failed {ab_row['failed']}, reloads {ab_row['reloads']}"
                          + "".join(f"; {n}" for n in ab_row["notes"])) if ab_row else "")
                    + f"\n\n== wrapper idle cost: hupwatch -- TestChild --socket S, {IDLE_SECONDS:g} s idle ==\n"
                    + idle_table(idle))
            print(text, flush=True)
            tables.append(text)
        if section in ("throughput", "all"):
            rounds = []
            for n in range(ROUNDS):
                if ROUNDS > 1:
                    progress(f"throughput: round {n + 1}/{ROUNDS}")
                rounds.append([throughput_row(key, pool, n) for pool in (False, True)
                               for key in ("swsgi", "uwsgi", "gunicorn", "ceiling") if key in SERVERS])
            rows = [median_round([rnd[i] for rnd in rounds]) for i in range(len(rounds[0]))] if rounds else []
            with open(os.path.join(OUT, "throughput.json"), "w") as f:
                json.dump({"rows": rows, "rounds": rounds}, f, indent=1)
            text = (f"\n== throughput: hello world through nginx, wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION:g}s, "
                    f"2 workers each{f', median of {ROUNDS} rounds' if ROUNDS > 1 else ''} ==\n" + throughput_table(rows))
            print(text, flush=True)
            tables.append(text)
        if section in ("workers", "all"):
            hk_rows = [harakiri_row(k) for k in ("swsgi", "uwsgi") if k in SERVERS]
            rc_rows = [recycle_row(k, pool) for pool in (False, True) for k in ("swsgi", "uwsgi", "gunicorn") if k in SERVERS]
            with open(os.path.join(OUT, "workers.json"), "w") as f:
                json.dump({"harakiri": hk_rows, "recycling": rc_rows}, f, indent=1)
            text = workers_tables(hk_rows, rc_rows)
            print(text, flush=True)
            tables.append(text)
    except Interrupted as e:
        progress(f"interrupted by {e}: stopping everything")
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        left = sweep()
        if left:
            progress(f"stopped {len(left)} leftover processes")
        with open(os.path.join(OUT, "tables.txt"), "w") as f:
            f.write("\n".join(tables) + "\n")
        shutil.rmtree(TMP, ignore_errors=True)
        progress(f"raw results: {OUT}")
    return 0


sys.exit(main())
