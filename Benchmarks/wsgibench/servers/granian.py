"""granian (Rust) with its WSGI interface."""
import os

from .. import common

NAME = "granian"


def available():
    return None if os.access(common.venv_bin("granian"), os.X_OK) else "granian not in the venv"


def start(module, bind, workers):
    kind, where = bind
    if kind == "uwsgi-unix":
        raise RuntimeError("granian does not speak the uwsgi protocol")
    address = ["--host", "127.0.0.1", "--port", str(where)] if kind == "tcp" else ["--uds", where]
    return common.Proc(f"granian-{module}-{kind}", [common.venv_bin("granian"), "--interface", "wsgi", "--workers",
                                                    str(workers), "--no-ws", "--log-level", "warning"] + address
                       + [f"{module}:application"], cwd=common.TMP)
