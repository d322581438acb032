"""swsgi hosting the app through the venv's libpython (dlopen), workers forked from the master."""
import os

from .. import common

NAME = "swsgi"
BINARY = os.path.join(common.BIN, "swsgi")


def available():
    return None if os.access(BINARY, os.X_OK) else f"{BINARY} not built"


def start(module, bind, workers, threads=1, binary=BINARY, name=NAME):
    argv = [binary, "--processes", str(workers), "--disable-logging", "--home", common.VENV,
            "--chdir", common.TMP, "--module", f"{module}:application"]
    if threads > 1:
        argv += ["--threads", str(threads)]
    kind, where = bind
    argv += {"tcp": ["--http-socket", f"127.0.0.1:{where}"], "http-unix": ["--socket", where],
             "uwsgi-unix": ["--uwsgi-socket", where]}[kind]
    return common.Proc(f"{name}-{module}-{kind}-t{threads}", argv)
