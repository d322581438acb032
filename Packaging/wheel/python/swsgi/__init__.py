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

    pip puts a wheel's scripts in the install scheme's scripts directory: the environment's own for a
    venv or a plain install, the user scheme's for `pip install --user`. The last candidate covers an
    install whose scheme differs from the running interpreter's default (a prefix install).
    """
    candidates = [sysconfig.get_path("scripts")]
    user_scheme = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else "posix_user"
    candidates.append(sysconfig.get_path("scripts", scheme=user_scheme))
    # site-packages is PREFIX/lib/pythonX.Y/site-packages; the scripts of that prefix are PREFIX/bin.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(here, os.pardir, os.pardir, os.pardir, "bin"))
    for directory in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise FileNotFoundError(
        "%s: the executable is not installed beside this package (looked in %s); reinstall with "
        "`%s -m pip install --force-reinstall swsgi`" % (name, ", ".join(candidates), sys.executable)
    )


def run(name):
    """Replaces this Python process with the executable: same pid, arguments, environment and exit code."""
    binary = find_binary(name)
    os.execv(binary, [binary] + sys.argv[1:])
