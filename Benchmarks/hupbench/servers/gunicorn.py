"""gunicorn sync, 2 workers, the hello app."""
import subprocess

from ..common import GUNICORN, TMP

_gunicorn_extra = None


def gunicorn_argv(bind_sock=None):
    """gunicorn sync, 2 workers, the hello app; without bind_sock it takes LISTEN_FDS."""
    global _gunicorn_extra
    if not GUNICORN:
        raise RuntimeError("gunicorn not installed")
    if _gunicorn_extra is None:
        help_text = subprocess.run([GUNICORN, "--help"], capture_output=True, text=True).stdout
        _gunicorn_extra = ["--no-control-socket"] if "--no-control-socket" in help_text else []
    argv = [GUNICORN]
    if bind_sock:
        argv += ["--bind", f"unix:{bind_sock}"]
    return argv + ["-w", "2", "--chdir", TMP] + _gunicorn_extra + ["app:app"]
