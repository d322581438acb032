"""bjoern (C, libev): one process, no worker management; the efficiency reference."""
import os

from .. import common

NAME = "bjoern"

RUN = "import sys, bjoern; sys.path.insert(0, sys.argv[1]); m = __import__(sys.argv[2]); bjoern.run(m.application, sys.argv[3], int(sys.argv[4]))"
RUN_UNIX = "import sys, bjoern; sys.path.insert(0, sys.argv[1]); m = __import__(sys.argv[2]); bjoern.run(m.application, 'unix:' + sys.argv[3])"


def available():
    ok = os.system(f"{common.venv_bin('python3')} -c 'import bjoern' 2>/dev/null") == 0
    return None if ok else "bjoern not in the venv (pip install bjoern; needs libev-dev)"


def start(module, bind, workers):
    kind, where = bind
    if kind == "uwsgi-unix":
        raise RuntimeError("bjoern does not speak the uwsgi protocol")
    py = common.venv_bin("python3")
    if kind == "tcp":
        return common.Proc(f"bjoern-{module}-tcp", [py, "-c", RUN, common.TMP, module, "127.0.0.1", str(where)])
    return common.Proc(f"bjoern-{module}-unix", [py, "-c", RUN_UNIX, common.TMP, module, where])
