"""A second swsgi build for A/B comparisons in the same run (BENCH_BIN_B: a folder holding its `swsgi`, e.g. a
release build of an older commit in another worktree). Measured interleaved with `swsgi`, so machine load
drifts alike for both."""
import os

from . import swsgi

NAME = "swsgi-b"
FOLDER = os.environ.get("BENCH_BIN_B", "")
BINARY = os.path.join(FOLDER, "swsgi") if FOLDER else ""


def available():
    if not BINARY:
        return "BENCH_BIN_B not set"
    return None if os.access(BINARY, os.X_OK) else f"{BINARY} not built"


def start(module, bind, workers, threads=1):
    return swsgi.start(module, bind, workers, threads, binary=BINARY, name=NAME)
