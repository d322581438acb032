"""Section workers: harakiri precision and recycling under load."""
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

from ..common import *  # noqa: F401,F403  (settings and helpers shared by every section)
from ..common import TMP, PROCS
from ..servers.gunicorn import gunicorn_argv
from ..servers.uwsgi import uwsgi_argv

SLEEP_APP_PY = '''import time


def application(environ, start_response):
    seconds = float(environ.get("PATH_INFO", "/sleep/0").rsplit("/", 1)[-1] or 0)
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept\\n"]
'''

HARAKIRI_SAMPLES = env_num("HARAKIRI_SAMPLES", 20)


def harakiri_backends(sock):
    """Both kill a request running past 1 s at once (no grace), 2 workers."""
    sleep_app = os.path.join(TMP, "sleepapp.py")
    with open(sleep_app, "w") as f:
        f.write(SLEEP_APP_PY)
    rows = {"swsgi": ("swsgi --harakiri 1", [SWSGI, "--socket", sock, "--processes", "2", "--app", "sleep",
                                             "--harakiri", "1", "--disable-logging"], signal.SIGTERM)}
    if UWSGI:
        rows["uwsgi"] = ("uWSGI --harakiri 1", [UWSGI] + UWSGI_ARGS + [
            "--http-socket", sock, "--processes", "2", "--master", "--harakiri", "1", "--disable-logging",
            "--chdir", TMP, "--wsgi-file", sleep_app], signal.SIGINT)
    return rows


def harakiri_sample(sock):
    """Seconds from sending a 3 s request to the server dropping the connection, minus the 1 s limit:
    the worker is killed, so the kernel closes its end. Measured the same way for every server."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(sock)
    t0 = time.monotonic()
    c.sendall(b"GET /sleep/3 HTTP/1.0\r\nHost: x\r\n\r\n")
    got = b""
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    t1 = time.monotonic()
    c.close()
    if got.startswith(b"HTTP/1.1 200") or got.startswith(b"HTTP/1.0 200"):
        raise RuntimeError("the 3 s request was answered: no harakiri")
    return (t1 - t0 - 1.0) * 1000


def harakiri_row(key):
    sock = os.path.join(TMP, f"hk-{key}.sock")
    label, argv, stop_sig = harakiri_backends(sock)[key]
    row = {"server": label}
    progress(f"workers: harakiri precision, {label}")
    with row_errors(row, f"harakiri {label}"):
        p = PROCS.spawn(f"hk-{key}", argv, stop_sig=stop_sig, cwd=TMP)
        wait_http_ready(sock, 60, p)
        late = []
        for _ in range(HARAKIRI_SAMPLES):
            late.append(harakiri_sample(sock))
            time.sleep(0.3)  # the replacement worker settles; both servers have 2 workers anyway
        row.update({"samples": len(late), "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99),
                    "max_ms": max(late)})
    return row


def recycle_backends():
    return {
        "swsgi": ("swsgi --max-requests 100", lambda s, ka: [SWSGI, "--socket", s, "--processes", "2", "--app", "hello",
                                                              "--disable-logging", "--max-requests", "100"], signal.SIGTERM),
        "uwsgi": ("uWSGI --max-requests 100", lambda s, ka: uwsgi_argv(s, ka) + ["--max-requests", "100"], signal.SIGINT),
        "gunicorn": ("gunicorn --max-requests 100", lambda s, ka: gunicorn_argv(s) + ["--max-requests", "100"], signal.SIGTERM),
    }


def recycle_row(key, pool):
    label, build, stop_sig = recycle_backends()[key]
    mode = "pool" if pool else "nopool"
    tag = f"rc-{key}-{mode}"
    sock = os.path.join(TMP, f"rc-{key}-{mode}.sock")
    row = {"server": label, "pool": pool}
    progress(f"workers: recycling, {label}, {'keepalive 32' if pool else 'no upstream keep-alive'}")
    with row_errors(row, f"recycling {label}"):
        backend = PROCS.spawn(tag, build(sock, pool), stop_sig=stop_sig, cwd=TMP)
        wait_http_ready(sock, 60, backend)
        _p, port = front_nginx(tag, sock, pool)
        before = set(descendants(backend.pid))
        wrk = start_wrk(tag, port, DURATION)
        r = wrk_result(tag, wrk, DURATION + 30)
        row.update({k: r[k] for k in ("requests", "failed", "socket_errors", "status", "rps")})
        row["recycled_at_least"] = len(before - set(descendants(backend.pid)))
    return row
