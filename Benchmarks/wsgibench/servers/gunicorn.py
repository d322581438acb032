"""gunicorn, sync workers (its default); gthread with threads > 1."""
import os

from .. import common

NAME = "gunicorn"


def available():
    return None if os.access(common.venv_bin("gunicorn"), os.X_OK) else "gunicorn not in the venv"


def start(module, bind, workers, threads=1):
    kind, where = bind
    if kind == "uwsgi-unix":
        raise RuntimeError("gunicorn does not speak the uwsgi protocol")
    address = f"127.0.0.1:{where}" if kind == "tcp" else f"unix:{where}"
    # --threads: gunicorn's gthread worker (sync stays the default with one thread).
    extra = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else []
    return common.Proc(f"gunicorn-{module}-{kind}-t{threads}", [common.venv_bin("gunicorn"), "-w", str(workers)] + extra
                       + ["--bind", address, "--no-control-socket", "--chdir", common.TMP, f"{module}:application"])
