"""swsgi and hupwatch, the native programs installed by `pip install swsgi`.

The wheel puts both executables in the scripts directory of the environment it is installed into
(`venv/bin`), beside that environment's python. `python -m swsgi` and `python -m hupwatch` run them.
"""

import os
import sys
import sysconfig

__all__ = ["__version__", "find_binary", "run"]

try:
    from importlib.metadata import version as _version  # Python 3.8+

    __version__ = _version("swsgi")  # the wheel's, which is `swsgi --version`'s
except Exception:  # not installed as a distribution (a source checkout on sys.path)
    __version__ = "unknown"


def find_binary(name):
    """The path of the installed executable `name` ("swsgi" or "hupwatch").

    pip puts a wheel's scripts in the install scheme's scripts directory. The install this package was
    imported from comes first: `pip install --target DIR` puts them in DIR/bin beside the package, every
    other scheme (a venv, `--prefix`, `--user`, a Python prefix) in PREFIX/bin for PREFIX/lib/pythonX.Y/
    site-packages. The running interpreter's own scripts directories come after, for layouts that differ.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [os.path.join(here, "bin"), os.path.normpath(os.path.join(here, os.pardir, os.pardir, os.pardir, "bin"))]
    candidates.append(sysconfig.get_path("scripts"))
    user_scheme = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else "posix_user"
    candidates.append(sysconfig.get_path("scripts", scheme=user_scheme))
    for directory in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise FileNotFoundError(
        "%s: the executable is not installed beside this package (looked in %s); reinstall with "
        "`%s -m pip install --force-reinstall swsgi`" % (name, ", ".join(candidates), sys.executable)
    )


def run(name):
    """Replaces this Python process with the executable: same pid, arguments and exit code.

    swsgi is told to host the app in this interpreter (SWSGI_PYTHON_EXECUTABLE, unless already set):
    `venv/bin/python -m swsgi` means that venv's Python even when the executable was installed elsewhere
    (`--user`, `--prefix`, a base Python seen through `--system-site-packages`), where swsgi alone would
    take the python3 on PATH.
    """
    try:
        binary = find_binary(name)
    except FileNotFoundError as e:
        sys.exit(str(e))  # one line and status 1, not a traceback
    env = os.environ.copy()
    if name == "swsgi" and sys.executable:
        env.setdefault("SWSGI_PYTHON_EXECUTABLE", sys.executable)
    os.execve(binary, [binary] + sys.argv[1:], env)
