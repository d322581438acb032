"""uWSGI with the python3 plugin (Debian) or built in (PyPI), 2 workers."""
import os

from ..common import TMP, UWSGI, UWSGI_ARGS

def uwsgi_argv(sock, keepalive):
    if not UWSGI:
        raise RuntimeError("uWSGI not installed")
    return [UWSGI] + UWSGI_ARGS + ["--http11-socket" if keepalive else "--http-socket", sock,
                                   "--processes", "2", "--master", "--disable-logging",
                                   "--chdir", TMP, "--wsgi-file", os.path.join(TMP, "app.py")]
