"""What every section shares: settings (environment knobs), run folders, /proc helpers, process
handling, HTTP probes, nginx, wrk and the hello app."""
import contextlib
import ctypes
import errno
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # Benchmarks/


# ---------------------------------------------------------------------------------------- settings

def env_num(name, default, kind=int):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        sys.exit(f"bench: {name}={raw!r} is not a number")
    if value < 0:
        sys.exit(f"bench: {name} must not be negative")
    return value


def duration_seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        sys.exit(f"bench: DURATION={text!r}: expected like 10s, 2m")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


RELOADS = env_num("RELOADS", 100)
DURATION = duration_seconds(os.environ.get("DURATION", "10s"))
IDLE_SECONDS = env_num("IDLE_SECONDS", 60, float)
RELOAD_TIMEOUT = env_num("RELOAD_TIMEOUT", 60, float)
NGINX_WORKERS = env_num("NGINX_WORKERS", 1)
ROUNDS = max(1, env_num("ROUNDS", 1))
ROWS = os.environ.get("ROWS", "abcdefghijklmn").lower()
SERVERS = [s.strip().lower() for s in os.environ.get("SERVERS", "swsgi,uwsgi,gunicorn,ceiling").split(",") if s.strip()]
CONNECTIONS = 32
THREADS = 2

BIN = os.environ.get("BENCH_BIN", os.path.join(os.path.dirname(HERE), ".build-bench", "release"))
HUPWATCH = os.path.join(BIN, "hupwatch")
SWSGI = os.path.join(BIN, "swsgi")
TESTCHILD = os.path.join(BIN, "TestChild")
NGINX = os.environ.get("BENCH_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
WRK = os.environ.get("BENCH_WRK") or shutil.which("wrk") or "wrk"
UWSGI = os.environ.get("BENCH_UWSGI", "")
UWSGI_ARGS = os.environ.get("BENCH_UWSGI_ARGS", "").split()
GUNICORN = os.environ.get("BENCH_GUNICORN", "")
HUPWATCH_PY = os.environ.get("BENCH_HUPWATCH_PY", "")

CLK_TCK = os.sysconf("SC_CLK_TCK")

# ------------------------------------------------------------------------------------ run folders

STAMP = time.strftime("%Y%m%d-%H%M%S")
OUT = os.path.join(HERE, "out", STAMP)
LOGS = os.path.join(OUT, "logs")
# private temp dir with the sockets, status files and nginx prefixes (short paths); main removes it
TMP = tempfile.mkdtemp(prefix="hb", dir="/tmp")



def progress(msg):
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(state, ppid, utime+stime) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[11]) + int(fields[12])


def ppid_map():
    m = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                m[int(name)] = st[1]
    return m


def children(pid):
    return sorted(p for p, pp in ppid_map().items() if pp == pid)


def descendants(pid):
    m = ppid_map()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for p, pp in m.items():
            if pp == parent and p not in found:
                found.append(p)
                frontier.append(p)
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1").strip()
    except FileNotFoundError:
        return "?"


# ------------------------------------------------------------------------------ process handling

class Interrupted(Exception):
    pass


def on_signal(sig, _frame):
    raise Interrupted(signal.Signals(sig).name)


class Procs:
    """Processes this script started, each in its own session (pgid == pid)."""

    def __init__(self):
        self.live = []  # [name, Popen, stop signal]

    def spawn(self, name, argv, stop_sig=signal.SIGTERM, env=None, cwd=None, log=None):
        log = log or os.path.join(LOGS, f"{name}.log")
        with open(log, "ab") as f:
            f.write(f"### {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            f.flush()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env, cwd=cwd)
        self.live.append([name, p, stop_sig])
        return p

    def stop(self, p, timeout=15.0):
        entry = next((e for e in self.live if e[1] is p), None)
        sig = entry[2] if entry else signal.SIGTERM
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.kill()
                p.wait()
        if entry:
            self.live.remove(entry)
        return p.returncode

    def stop_all(self):
        for _name, p, _sig in reversed(list(self.live)):
            self.stop(p)


PROCS = Procs()


def reap_orphans():
    """Reap exited children that no Popen tracks (orphans adopted by this subreaper)."""
    tracked = {p.pid for _n, p, _s in PROCS.live}
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in tracked:
            return
        os.waitpid(info.si_pid, 0)


def sweep(grace=5.0):
    """Stop every descendant still running (after the tracked processes were stopped); returns
    their command lines."""
    PROCS.stop_all()
    left = descendants(os.getpid())
    names = [f"{p} {cmdline(p)}" for p in left]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            reap_orphans()
            left = [p for p in descendants(os.getpid())]
            if not left:
                break
            time.sleep(0.01)
        if not left:
            break
    reap_orphans()
    return names


# ------------------------------------------------------------------------------------ HTTP probes

REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


def http_get_status(family, address, timeout=2.0):
    """Status code of a GET /, or None if the connection or the answer failed."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address)
        s.sendall(REQUEST)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return int(m.group(1)) if m else None
    except OSError:
        return None
    finally:
        s.close()


def wait_http_ready(path, timeout, proc=None):
    """Poll GET / over the Unix socket every 1 ms until it answers 2xx; seconds taken."""
    t0 = time.monotonic()
    while True:
        code = http_get_status(socket.AF_UNIX, path, timeout=1.0) if os.path.exists(path) else None
        if code is not None and 200 <= code < 300:
            return time.monotonic() - t0
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before answering on {path}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"no 2xx answer on {path} within {timeout:.0f} s")
        time.sleep(0.001)


def wait_tcp_listening(port, timeout, proc=None):
    t0 = time.monotonic()
    while True:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            return
        except OSError:
            pass
        finally:
            s.close()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"nginx exited with status {proc.returncode}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")
        time.sleep(0.005)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------------ nginx

TEMP_PATHS = "".join(f"    {d}_temp_path {{prefix}}/{d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def nginx_common(prefix, tag, workers):
    return (f"worker_processes {workers};\n"
            "daemon off;\nmaster_process on;\n"
            "user root root;\n"  # the sockets live in a private 0700 folder
            f"pid {prefix}/nginx.pid;\n"
            f"error_log {LOGS}/{tag}.nginx-error.log error;\n"
            "events { worker_connections 4096; }\n")


def start_nginx(tag, conf_text, prefix, port=None):
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text.replace("{prefix}", prefix))
    with open(os.path.join(LOGS, f"{tag}.nginx.conf"), "w") as f:
        f.write(conf_text.replace("{prefix}", prefix))
    p = PROCS.spawn(f"{tag}.nginx", [NGINX, "-p", prefix + "/", "-e", os.path.join(LOGS, f"{tag}.nginx-error.log"),
                                     "-c", conf], stop_sig=signal.SIGTERM)
    if port is not None:
        wait_tcp_listening(port, 10, p)
    return p


def front_nginx(tag, sock, keepalive_pool, reload_logging=False, backup=None):
    """nginx on 127.0.0.1:<free port> proxying to the Unix socket; returns (Popen, port).
    `backup`: a second Unix socket path listed as a backup upstream (hupwatch's guard link)."""
    prefix = os.path.join(TMP, f"n-{tag}")
    port = free_port()
    http = "http {\n" + TEMP_PATHS
    if not reload_logging:
        http += "    access_log off;\n"
    else:
        # one line per failed request, with millisecond timestamps, to place failures on the timeline
        http += ("    map $status $bench_failed { ~^[23] 0; default 1; }\n"
                 "    log_format bench_fail '$msec $status $request_time \"$upstream_connect_time\" \"$upstream_status\"';\n"
                 f"    access_log {LOGS}/{tag}.nginx-failed.log bench_fail if=$bench_failed;\n")
    if keepalive_pool is None and backup:  # a failed connect to the path is retried on the guard link
        http += (f"    upstream backend {{\n        server unix:{sock} max_fails=0;\n"
                 f"        server unix:{backup} backup;\n    }}\n")
        target = "http://backend"
        extra = ""
    elif keepalive_pool is None:  # reload section: proxy_pass straight to the socket, no pool
        target = f"http://unix:{sock}:"
        extra = ""
    else:
        http += f"    upstream backend {{\n        server unix:{sock};\n"
        if keepalive_pool:
            http += "        keepalive 32;\n"
        http += "    }\n"
        target = "http://backend"
        extra = ("            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n"
                 if keepalive_pool else "")
    http += ("    server {\n"
             f"        listen 127.0.0.1:{port};\n"
             "        keepalive_requests 1000000;\n"
             "        location / {\n"
             f"            proxy_pass {target};\n{extra}"
             "        }\n    }\n}\n")
    p = start_nginx(tag, nginx_common(prefix, tag, NGINX_WORKERS) + http, prefix, port)
    return p, port


# -------------------------------------------------------------------------------------------- wrk

WRK_LUA = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
'''


def start_wrk(tag, port, seconds, latency=True):
    lua = os.path.join(TMP, "done.lua")
    if not os.path.exists(lua):
        with open(lua, "w") as f:
            f.write(WRK_LUA)
    argv = [WRK, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{int(math.ceil(seconds))}s", "-s", lua]
    if latency:
        argv.append("--latency")
    argv.append(f"http://127.0.0.1:{port}/")
    return PROCS.spawn(f"{tag}.wrk", argv, stop_sig=signal.SIGINT, log=os.path.join(LOGS, f"{tag}.wrk.txt"))


def wrk_result(tag, proc, timeout):
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    PROCS.stop(proc)
    with open(os.path.join(LOGS, f"{tag}.wrk.txt")) as f:
        text = f.read()
    m = re.search(r"BENCH-JSON (\{.*\})", text)
    if not m:
        raise RuntimeError(f"wrk printed no summary (status {proc.returncode}); see logs/{tag}.wrk.txt")
    r = json.loads(m.group(1))
    r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["failed"] = r["socket_errors"] + r["status"]
    r["attempts"] = r["requests"] + r["socket_errors"]
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    return r


# ------------------------------------------------------------------------------------------- apps

APP_PY = '''BODY = b"Hello, World!\\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


application = app
'''


@contextlib.contextmanager
def row_errors(row, what):
    """A row that fails records why and the run goes on; everything it started is stopped either way."""
    try:
        yield
    except Interrupted:
        raise
    except Exception as e:
        row["error"] = str(e)
        progress(f"{what}: {e}")
    finally:
        sweep()


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)]
