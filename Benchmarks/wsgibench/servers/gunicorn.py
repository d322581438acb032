"""gunicorn, sync workers (its default)."""
import os

from .. import common

NAME = "gunicorn"


def available():
    return None if os.access(common.venv_bin("gunicorn"), os.X_OK) else "gunicorn not in the venv"


def start(module, bind, workers):
    kind, where = bind
    if kind == "uwsgi-unix":
        raise RuntimeError("gunicorn does not speak the uwsgi protocol")
    address = f"127.0.0.1:{where}" if kind == "tcp" else f"unix:{where}"
    return common.Proc(f"gunicorn-{module}-{kind}", [common.venv_bin("gunicorn"), "-w", str(workers), "--bind", address,
                                                     "--no-control-socket", "--chdir", common.TMP, f"{module}:application"])
