"""uWSGI (Debian's, python3 plugin) with the same venv; --http11-socket keeps connections alive."""
import os
import shutil

from .. import common

NAME = "uwsgi"
BINARY = os.environ.get("BENCH_UWSGI") or shutil.which("uwsgi") or ""
PLUGIN = (["--plugin", "python3"] if BINARY and os.path.realpath(BINARY) == "/usr/bin/uwsgi-core" else [])


def available():
    return None if BINARY else "uwsgi not installed (apt-get install uwsgi-core uwsgi-plugin-python3)"


def start(module, bind, workers, threads=1):
    argv = [BINARY] + PLUGIN + ["--master", "--processes", str(workers), "--disable-logging", "--home", common.VENV,
                                "--chdir", common.TMP, "--module", f"{module}:application"]
    if threads > 1:
        argv += ["--threads", str(threads)]
    kind, where = bind
    argv += {"tcp": ["--http11-socket", f"127.0.0.1:{where}"], "http-unix": ["--http11-socket", where],
             "uwsgi-unix": ["--socket", where]}[kind]
    return common.Proc(f"uwsgi-{module}-{kind}-t{threads}", argv, stop_sig=2)  # SIGINT: uWSGI reloads on TERM
