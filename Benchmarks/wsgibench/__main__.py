"""python3 -m wsgibench [direct|nginx|threads|all]; knobs: DURATION=8 CONNECTIONS=32 WORKERS=2 ROUNDS=3
SERVERS=swsgi,uwsgi,gunicorn,granian,bjoern BENCH_WSGI_VENV=<venv with gunicorn, granian, bjoern, flask>."""
import os
import platform
import shutil
import subprocess
import sys

from . import common, report, servers
from .scenarios import direct, nginx, threads


def versions():
    py = common.venv_bin("python3")
    ask = lambda code: subprocess.run([py, "-c", code], capture_output=True, text=True).stdout.strip()
    pkgs = ask("import importlib.metadata as m\nfor p in ('gunicorn','granian','bjoern','flask','django'):\n"
               "    try: print(p, m.version(p))\n    except Exception: print(p, 'missing')")
    uw = subprocess.run([servers.uwsgi.BINARY or "false", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"Python {ask('import sys; print(sys.version.split()[0])')} ({py}); uWSGI {uw or 'missing'}; "
            + ", ".join(pkgs.splitlines()) + f"; {os.cpu_count()} cores, {platform.release()}")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what not in ("direct", "nginx", "threads", "all"):
        sys.exit("usage: python3 -m wsgibench [direct|nginx|threads|all]")
    if not os.access(common.venv_bin("python3"), os.X_OK):
        sys.exit(f"wsgibench: no virtualenv at {common.VENV}; Benchmarks/run wsgi makes it")
    names = [s.strip() for s in os.environ.get("SERVERS", "swsgi,uwsgi,gunicorn,granian,bjoern").split(",") if s.strip()]
    chosen = servers.by_name(names)
    common.write_apps()
    rows = []
    try:
        if what in ("direct", "all"):
            rows += direct.run(chosen)
        if what in ("nginx", "all"):
            rows += nginx.run(chosen)
        if what in ("threads", "all"):
            rows += threads.run(chosen)
    finally:
        shutil.rmtree(common.TMP, ignore_errors=True)
    report.write(rows, f"# WSGI hosting, {common.STAMP}\n\n{versions()}")


main()
