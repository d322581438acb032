"""Section throughput: the hello app through nginx, without and with an upstream keep-alive pool."""
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

def throughput_backends():
    return {
        "swsgi": ("swsgi", lambda s, ka: [SWSGI, "--socket", s, "--processes", "2", "--app", "hello",
                                           "--disable-logging"], signal.SIGTERM),
        "uwsgi": ("uWSGI", uwsgi_argv, signal.SIGINT),
        "gunicorn": ("gunicorn sync", lambda s, ka: gunicorn_argv(s), signal.SIGTERM),
        "ceiling": ("nginx return 200 (ceiling)", None, signal.SIGTERM),
    }


def ceiling_conf(prefix, tag, sock):
    return (nginx_common(prefix, tag, 2) + "http {\n    access_log off;\n" + TEMP_PATHS +
            f"    server {{\n        listen unix:{sock};\n"
            "        location / {\n            default_type text/plain;\n"
            "            return 200 \"Hello, World!\\n\";\n        }\n    }\n}\n")


def median_round(runs):
    """Of one row's rounds, the one with the median requests/s (rounds that failed left out)."""
    ok = sorted((r for r in runs if not r.get("error")), key=lambda r: r["rps"])
    if not ok:
        return runs[-1]
    row = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        row["rounds_rps"] = [round(r["rps"]) if not r.get("error") else None for r in runs]
    return row


def throughput_row(key, pool, n=0):
    label, build, stop_sig = throughput_backends()[key]
    mode = "pool" if pool else "nopool"
    tag = f"tp-{key}-{mode}" + (f"-r{n + 1}" if ROUNDS > 1 else "")
    sock = os.path.join(TMP, f"t{n}-{key}-{mode}.sock")
    row = {"server": label, "key": key, "pool": pool}
    progress(f"throughput: {label}, {'keepalive 32' if pool else 'no upstream keep-alive'}")
    with row_errors(row, f"throughput {label}"):
        if key == "ceiling":
            prefix = os.path.join(TMP, f"c-{mode}")
            os.makedirs(prefix, exist_ok=True)
            backend = start_nginx(f"{tag}-backend", ceiling_conf(prefix, f"{tag}-backend", sock), prefix)
            row["command"] = f"nginx -c {LOGS}/{tag}-backend.nginx.conf"
        else:
            argv = build(sock, pool)
            row["command"] = argv
            backend = PROCS.spawn(tag, argv, stop_sig=stop_sig, cwd=TMP)
        row["ready_ms"] = wait_http_ready(sock, 60, backend) * 1000
        # measured from spawn, before nginx starts: nothing else competes for the cores
        _p, port = front_nginx(tag, sock, pool)
        code = http_get_status(socket.AF_INET, ("127.0.0.1", port))
        if code != 200:
            raise RuntimeError(f"GET through nginx answered {code}")
        warm = start_wrk(f"{tag}-warmup", port, 1, latency=False)
        wrk_result(f"{tag}-warmup", warm, 20)
        wrk = start_wrk(tag, port, DURATION)
        r = wrk_result(tag, wrk, DURATION + 30)
        row.update({k: r[k] for k in ("rps", "p50_us", "p99_us", "socket_errors", "status", "requests",
                                      "connect", "read", "write", "timeout")})
        workers = children(backend.pid)
        rss = [rss_kib(p) for p in workers]
        rss = [x for x in rss if x is not None]
        row["workers"] = len(rss)
        row["rss_worker_mib"] = (sum(rss) / len(rss) / 1024) if rss else None
        row["rss_master_mib"] = (rss_kib(backend.pid) or 0) / 1024
    return row
