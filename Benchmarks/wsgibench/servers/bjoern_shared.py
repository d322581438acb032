"""bjoern inside a python3 that runs on the shared libpython (what `--enable-shared` builds make, e.g. the official
Docker python images), where swsgi and uWSGI run too. Debian's /usr/bin/python3.11, under which the `bjoern` row
runs, is linked statically and runs the same Python code faster; this row separates what the server costs from
what the interpreter's build costs. The launcher is CPython's own main (`Py_BytesMain`) linked to the libpython
the venv's interpreter names, placed in the venv's bin/ so the venv applies."""
import os
import subprocess

from .. import common
from . import bjoern

NAME = "bjoern-shared"
SOURCE = "extern int Py_BytesMain(int, char **);\nint main(int argc, char **argv) { return Py_BytesMain(argc, argv); }\n"


def launcher():
    return common.venv_bin("python3-shared")


def build():
    """Builds the launcher once; None, or why it cannot be built."""
    out = launcher()
    if os.access(out, os.X_OK):
        return None
    ask = subprocess.run([common.venv_bin("python3"), "-c",
                          "import sysconfig as s; print(s.get_config_var('LIBDIR')); print(s.get_config_var('INSTSONAME'))"],
                         capture_output=True, text=True)
    libdir, soname = (ask.stdout.split("\n") + ["", ""])[:2]
    library = next((p for p in (os.path.join(libdir, soname), os.path.join(libdir, "x86_64-linux-gnu", soname),
                                os.path.join("/usr/lib/x86_64-linux-gnu", soname)) if soname and os.path.exists(p)), None)
    if library is None:
        return f"no shared libpython found for {common.venv_bin('python3')} ({libdir}/{soname})"
    source = os.path.join(common.TMP, "python3-shared.c")
    with open(source, "w") as f:
        f.write(SOURCE)
    cc = subprocess.run(["cc", "-O2", "-o", out, source, library, f"-Wl,-rpath,{os.path.dirname(library)}"],
                        capture_output=True, text=True)
    return None if cc.returncode == 0 else f"cc failed: {cc.stderr.strip()[:200]}"


def available():
    why = bjoern.available() or build()
    if why:
        return why
    check = subprocess.run([launcher(), "-c", "import bjoern, sys; print(sys.prefix)"], capture_output=True, text=True)
    return None if check.returncode == 0 else f"{launcher()} cannot import bjoern: {check.stderr.strip()[-200:]}"


def start(module, bind, workers):
    kind, where = bind
    if kind == "uwsgi-unix":
        raise RuntimeError("bjoern does not speak the uwsgi protocol")
    py = launcher()
    if kind == "tcp":
        return common.Proc(f"{NAME}-{module}-tcp", [py, "-c", bjoern.RUN, common.TMP, module, "127.0.0.1", str(where)])
    return common.Proc(f"{NAME}-{module}-unix", [py, "-c", bjoern.RUN_UNIX, common.TMP, module, where])
