"""Processes, ports, CPU and memory accounting, wrk: what every scenario needs."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def env_num(name, default, kind=float):
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        sys.exit(f"wsgibench: {name}={raw!r} is not a number")


DURATION = env_num("DURATION", 8.0)
CONNECTIONS = int(env_num("CONNECTIONS", 32))
WORKERS = int(env_num("WORKERS", 2))
# Direct rows: each server measured this many times, interleaved, the median reported (CPU time per
# request moves with the host's load; interleaving spreads that over every server alike).
ROUNDS = max(1, int(env_num("ROUNDS", 3)))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-bench", "release"))
NGINX = os.environ.get("BENCH_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
WRK = os.environ.get("BENCH_WRK") or shutil.which("wrk") or "wrk"
# The one Python every server runs: a virtualenv of Debian's python3 holding gunicorn, granian, bjoern, flask.
VENV = os.environ.get("BENCH_WSGI_VENV", os.path.join(HERE, "..", "out", "wsgi-venv"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

STAMP = time.strftime("%Y%m%d-%H%M%S")
OUT = os.path.join(HERE, "..", "out", "wsgi-" + STAMP)
LOGS = os.path.join(OUT, "logs")
os.makedirs(LOGS, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="wb.", dir="/tmp")


def progress(msg):
    print(f"[wsgibench] {msg}", file=sys.stderr, flush=True)


class Proc:
    """A process started in its own session; `stop()` ends and reaps it and everything in its group."""

    def __init__(self, tag, argv, cwd=None, env=None, stop_sig=signal.SIGTERM):
        self.tag = tag
        self.log = os.path.join(LOGS, f"{tag}.log")
        with open(self.log, "w") as f:
            self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.popen.pid
        self.stop_sig = stop_sig

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        if self.alive():
            try:
                os.killpg(self.pid, self.stop_sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass


def tree(pid):
    """pid and its descendants, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def cpu_split(pids):
    """(utime, stime) seconds of the processes (threads included), live ones only."""
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids):
    """utime + stime of the processes (threads included), live ones only."""
    return sum(cpu_split(pids))


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / (1 << 20)
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port=None, path=None, proc=None, timeout=20):
    """Until a GET / answers 200 on 127.0.0.1:port or the Unix socket at path."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.tag} exited early; see {proc.log}")
        try:
            if path:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(2)
                s.connect(path)
            else:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = s.recv(64)
            s.close()
            if b" 200 " in data:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered 200 on {path or port} within {timeout} s")


def wait_listening(port=None, path=None, proc=None, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.tag} exited early; see {proc.log}")
        try:
            if path:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
            else:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {path or port} within {timeout} s")


WRK_LUA = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH-JSON {"requests":%d,"duration_us":%d,"errors":%d,"status":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(99)))
end
'''


def wrk(tag, port, seconds=None, path="/", connections=None):
    """wrk with CONNECTIONS (or `connections`) connections for `seconds`: requests/s, requests, failures, p99."""
    lua = os.path.join(TMP, "done.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    out = os.path.join(LOGS, f"{tag}.wrk.txt")
    with open(out, "w") as f:
        subprocess.run([WRK, "-t2", f"-c{connections or CONNECTIONS}", f"-d{int(seconds or DURATION)}s", "-s", lua,
                        f"http://127.0.0.1:{port}{path}"], stdout=f, stderr=subprocess.STDOUT, timeout=(seconds or DURATION) + 60)
    text = open(out).read()
    m = re.search(r"BENCH-JSON (\{.*\})", text)
    if not m:
        raise RuntimeError(f"wrk printed no summary; see {out}")
    r = json.loads(m.group(1))
    r["failed"] = r["errors"] + r["status"]
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    return r


HELLO_PY = '''BODY = b"Hello, World!\\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


app = application
'''

FLASK_PY = '''from flask import Flask
app = Flask(__name__)
application = app


@app.route("/")
def hello():
    return "Hello, World!\\n"
'''


def write_apps():
    """hello.py, flask_hello.py, io_sleep.py and the Django project (djapp.py, djsite/) in the private
    temp dir; returns the dir."""
    files = {"hello.py": HELLO_PY, "flask_hello.py": FLASK_PY, "io_sleep.py": IO_SLEEP_PY, "djapp.py": DJANGO_APP_PY,
             "djsite/__init__.py": "", "djsite/settings.py": DJANGO_SETTINGS_PY, "djsite/urls.py": DJANGO_URLS_PY}
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(TMP, name)), exist_ok=True)
        with open(os.path.join(TMP, name), "w") as f:
            f.write(text)
    return TMP


def smaps_rollup(pid):
    """(USS, PSS) of a process in MiB, from /proc/PID/smaps_rollup (USS: its private pages)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    fields[parts[0][:-1]] = int(parts[1])
    except OSError:
        return 0.0, 0.0
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return uss / 1024, fields.get("Pss", 0) / 1024


def venv_bin(name):
    return os.path.join(VENV, "bin", name)

# An I/O-bound app: each request waits 20 ms (a database call), the GIL released meanwhile.
IO_SLEEP_PY = '''import time
BODY = b"Hello, World!\\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    time.sleep(0.02)
    start_response("200 OK", HEADERS)
    return [BODY]
'''

# A minimal Django project: admin, auth, sessions, the ORM on SQLite; "/" counts users through the ORM.
DJANGO_APP_PY = '''import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsite.settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
'''

DJANGO_SETTINGS_PY = '''import os
BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware", "django.contrib.messages.middleware.MessageMiddleware"]
ROOT_URLCONF = "djsite.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(BASE_DIR, "db.sqlite3")}}
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

DJANGO_URLS_PY = '''from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("users: %d\\n" % User.objects.count(), content_type="text/plain")


urlpatterns = [path("", index), path("admin/", admin.site.urls)]
'''
