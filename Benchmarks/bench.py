#!/usr/bin/env python3
"""Benchmarks for hupwatch and swsgi; started by Benchmarks/run, which installs the tools, builds the
release binaries and passes their paths in the environment. Standard library only.

    bench.py reload|throughput|all

Every process is started in its own session, this process is a child subreaper (orphans come back
to it), and whatever is left at the end of a row or of the run is stopped and reaped. See README.md.
"""
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

HERE = os.path.dirname(os.path.abspath(__file__))


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
ROWS = os.environ.get("ROWS", "abcdefghij").lower()
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
TMP = None  # private temp dir with the sockets, status files and nginx prefixes (short paths)


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


def uwsgi_argv(sock, keepalive):
    if not UWSGI:
        raise RuntimeError("uWSGI not installed")
    return [UWSGI] + UWSGI_ARGS + ["--http11-socket" if keepalive else "--http-socket", sock,
                                   "--processes", "2", "--master", "--disable-logging",
                                   "--chdir", TMP, "--wsgi-file", os.path.join(TMP, "app.py")]


# ------------------------------------------------------------------------------- reload section

def read_status(path):
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.001)
    raise RuntimeError(f"status file {path} unreadable")


def reload_specs():
    """row -> (label, kind, argv builder (sock, status) -> argv)."""
    hw = lambda st, *more: [HUPWATCH, "--status-file", st, *more, "--"]  # noqa: E731
    return {
        "a": ("hupwatch + TestChild, rebind", "hupwatch",
              lambda s, st: hw(st) + [TESTCHILD, "--socket", s]),
        "b": ("hupwatch --listen + TestChild", "hupwatch",
              lambda s, st: hw(st, "--listen", s) + [TESTCHILD]),
        "c": ("hupwatch + swsgi, rebind", "hupwatch",
              lambda s, st: hw(st) + [SWSGI, "--socket", s, "--processes", "2", "--disable-logging"]),
        "d": ("hupwatch --listen + swsgi", "hupwatch",
              lambda s, st: hw(st, "--listen", s) + [SWSGI, "--processes", "2", "--disable-logging"]),
        "e": ("hupwatch + gunicorn, rebind", "hupwatch",
              lambda s, st: hw(st) + gunicorn_argv(s)),
        "f": ("hupwatch --listen + gunicorn", "hupwatch",
              lambda s, st: hw(st, "--listen", s) + gunicorn_argv(None)),
        "g": ("original hupwatch -w 1 + gunicorn", "original",
              lambda s, st: ([HUPWATCH_PY] if HUPWATCH_PY else []) + ["-w", "1", "--"] + gunicorn_argv(s)),
        "h": ("gunicorn alone, HUP to master", "gunicorn",
              lambda s, st: gunicorn_argv(s)),
        # The naive rebind every restarted gunicorn/uWSGI does: unlink, bind, listen. The path is missing
        # or refusing in between, in the new generation's own start-up, where no wrapper can step in.
        "i": ("hupwatch + TestChild --unlink-bind", "hupwatch",
              lambda s, st: hw(st) + [TESTCHILD, "--socket", s, "--unlink-bind"]),
        # Row e again, with nginx given hupwatch's guard link (.NAME.hupwatch) as a backup upstream:
        # during the new gunicorn's rebind window the link still leads to the serving listener.
        "j": ("hupwatch + gunicorn, rebind, nginx backup", "hupwatch",
              lambda s, st: hw(st) + gunicorn_argv(s), True),
    }


def one_reload(kind, wrapper, status_path):
    """Send one HUP and wait until that reload finished. Returns a record with old_gone_ms
    (HUP until the old generation's main pid -- gunicorn alone: every old worker -- is gone)."""
    pid = wrapper.pid
    rec = {"outcome": None}
    if kind == "hupwatch":
        st = read_status(status_path)
        cur = st["current_generation"]
        old = [g["pid"] for g in st["generations"] if g["generation"] == cur]
        prev = (st.get("last_reload") or {}).get("generation") or 0
        floor = max(cur, prev)
    else:
        old = children(pid)
        if not old:
            raise RuntimeError("no child process to reload")
    rec["old_pids"] = old
    rec["hup_wall"] = time.time()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    gone_at = None
    while True:
        now = time.monotonic()
        if gone_at is None and not any(alive(p) for p in old):
            gone_at = now
            rec["old_gone_ms"] = (now - t0) * 1000
        if kind == "hupwatch":
            st = read_status(status_path)
            lr = st.get("last_reload") or {}
            if (lr.get("generation") or 0) > floor:
                if lr.get("outcome") == "failed":
                    rec["outcome"] = "failed"
                    rec["detail"] = lr
                    break
                if gone_at is not None and len(st["generations"]) == 1 and st["current_generation"] == lr["generation"]:
                    rec["outcome"] = "succeeded"
                    rec["new_pids"] = [st["generations"][0]["pid"]]
                    break
        elif gone_at is not None:
            kids = [p for p in children(pid) if p not in old]
            if kind == "original" and kids:
                rec["outcome"] = "succeeded"
                rec["new_pids"] = kids
                break
            if kind == "gunicorn" and len(kids) >= 2:
                rec["outcome"] = "succeeded"
                rec["new_pids"] = kids
                break
        if wrapper.poll() is not None:
            rec["outcome"] = f"wrapper exited ({wrapper.returncode})"
            break
        if now - t0 > RELOAD_TIMEOUT:
            rec["outcome"] = f"timeout after {RELOAD_TIMEOUT:.0f} s"
            break
        time.sleep(0.001)
    rec["done_ms"] = (time.monotonic() - t0) * 1000
    if kind == "original":
        # The original runs its whole reload inside its Python SIGHUP handler, and a HUP that arrives
        # before that handler has put the new service back in its list is dropped ("Received HUP
        # while service list is empty"). Give it a moment after the old pid is reaped.
        time.sleep(0.2)
    return rec


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)]


def short_reason(msg):
    """'connect() to unix:... failed (2: No such file or directory) while connecting to upstream'
    -> 'connect() ENOENT'."""
    m = re.search(r"(\w+)\(\)[^(]*failed \((\d+): [^)]*\)", msg)
    if m:
        return f"{m.group(1)}() {errno.errorcode.get(int(m.group(2)), m.group(2))}"
    m = re.search(r"upstream (prematurely closed connection|timed out)", msg)
    if m:
        return "upstream " + m.group(1)
    return re.sub(r"unix:\S+?(?=[\s:,\"]|$)", "unix:SOCK", msg)[:80]


def failure_timeline(tag, reloads):
    """Place the requests nginx answered with an error (its access log of non-2xx/3xx, 499 = wrk
    hanging up at the end left out) on the HUP timeline, and count nginx's error log reasons."""
    out = {"nginx_failed": 0, "by_status": {}, "reasons": {}, "in_reload": 0, "outside_reload": 0,
           "ms_after_hup": [], "reloads_hit": [], "connect_failed": 0, "after_connect": 0}
    path = os.path.join(LOGS, f"{tag}.nginx-failed.log")
    hups = [(r["hup_wall"], r["done_ms"] / 1000) for r in reloads]
    hit = set()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 4:
                    continue
                t, status, connect_time = float(parts[0]), parts[1], parts[3].strip('"')
                out["by_status"][status] = out["by_status"].get(status, 0) + 1
                if status == "499":
                    continue
                out["nginx_failed"] += 1
                # "-": no connection to the server was made; a number: it failed after connecting
                out["connect_failed" if connect_time in ("-", "") else "after_connect"] += 1
                idx = max((i for i, (h, _d) in enumerate(hups) if h <= t), default=None)
                if idx is not None and t <= hups[idx][0] + hups[idx][1] + 0.05:
                    out["in_reload"] += 1
                    out["ms_after_hup"].append(round((t - hups[idx][0]) * 1000))
                    hit.add(idx + 1)
                else:
                    out["outside_reload"] += 1
    out["reloads_hit"] = sorted(hit)
    err = os.path.join(LOGS, f"{tag}.nginx-error.log")
    if os.path.exists(err):
        with open(err, errors="replace") as f:
            for line in f:
                m = re.search(r"\[(?:error|crit|alert|emerg)\] \d+#\d+: \*\d+ (.*?)(?:, client: .*)?$", line)
                if m:
                    reason = short_reason(m.group(1))
                    out["reasons"][reason] = out["reasons"].get(reason, 0) + 1
    return out


def timeline_note(tl):
    if not tl["nginx_failed"]:
        return None
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(tl["reasons"].items(), key=lambda kv: -kv[1])[:3])
    statuses = "/".join(sorted(k for k in tl["by_status"] if k != "499"))
    text = f"nginx {statuses} x{tl['nginx_failed']} ({reasons})"
    if tl["ms_after_hup"]:
        ms = sorted(tl["ms_after_hup"])
        text += (f"; {tl['in_reload']} during {len(tl['reloads_hit'])} reloads, {ms[0]}-{ms[-1]} ms "
                 f"after HUP (median {statistics.median(ms):.0f})")
    if tl["outside_reload"]:
        text += f"; {tl['outside_reload']} outside reloads"
    return text


def reload_row(letter, spec):
    label, kind, build, *options = spec
    backup_link = bool(options and options[0])
    tag = f"reload-{letter}"
    sock = os.path.join(TMP, f"{letter}.sock")
    status = os.path.join(TMP, f"{letter}.status.json")
    row = {"row": letter, "setup": label, "kind": kind, "reloads": [], "notes": []}
    progress(f"reload {letter}: {label}")
    try:
        if kind == "original" and not HUPWATCH_PY:
            raise RuntimeError("original hupwatch not installed")
        argv = build(sock, status)
        row["command"] = argv
        backup = os.path.join(os.path.dirname(sock), "." + os.path.basename(sock) + ".hupwatch") if backup_link else None
        _nginx, port = front_nginx(tag, sock, None, reload_logging=True, backup=backup)
        wrapper = PROCS.spawn(tag, argv)
        wait_http_ready(sock, 60, wrapper)
        if kind == "hupwatch":
            t0 = time.monotonic()
            while not any(g["state"] == "ready" for g in read_status(status)["generations"]):
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("status file never showed a ready generation")
                time.sleep(0.005)
        code = http_get_status(socket.AF_INET, ("127.0.0.1", port))
        if code != 200:
            raise RuntimeError(f"GET through nginx answered {code}")
        wrk_cap = max(60.0, RELOADS * 8.0 + 30.0)
        wrk = start_wrk(tag, port, wrk_cap, latency=False)
        time.sleep(1.0)
        for i in range(RELOADS):
            if wrk.poll() is not None:
                row["notes"].append(f"wrk ended after {i} reloads")
                break
            rec = one_reload(kind, wrapper, status)
            rec["n"] = i + 1
            row["reloads"].append(rec)
            reap_orphans()
            if rec["outcome"] != "succeeded":
                row["notes"].append(f"reload {i + 1}: {rec['outcome']}")
                if rec["outcome"] != "failed":
                    break
            if (i + 1) % 10 == 0:
                progress(f"reload {letter}: {i + 1}/{RELOADS}")
        time.sleep(1.0)
        wrk.send_signal(signal.SIGINT)
        row["wrk"] = wrk_result(tag, wrk, 15)
    except Interrupted:
        raise
    except Exception as e:  # the row says what went wrong; the run goes on
        row["error"] = str(e)
        progress(f"reload {letter}: {e}")
    finally:
        # load first (wrk, then nginx: no request is cut by the teardown), then the wrapper alone, to
        # see what it leaves behind
        left_before = []
        for e in list(PROCS.live):
            if e[0] != tag:
                PROCS.stop(e[1])
        wrapper_entry = next((e for e in PROCS.live if e[0] == tag), None)
        if wrapper_entry:
            PROCS.stop(wrapper_entry[1], timeout=40)
            time.sleep(0.2)
            reap_orphans()  # orphans that already exited are not "left running"
            left_before = [f"{p} {cmdline(p)}" for p in descendants(os.getpid())
                           if (proc_stat(p) or ("Z",))[0] != "Z"]
        sweep()
        if left_before:
            row["left_after_wrapper_exit"] = left_before
            row["notes"].append(f"{len(left_before)} processes left running after the wrapper exited (stopped by the script)")
    done = [r for r in row["reloads"] if r["outcome"] == "succeeded"]
    row["reloads_done"] = len(done)
    gone = [r["old_gone_ms"] for r in done if "old_gone_ms" in r]
    row["old_gone_p50_ms"] = statistics.median(gone) if gone else None
    row["old_gone_p95_ms"] = percentile(gone, 95)
    row["timeline"] = failure_timeline(tag, row["reloads"])
    note = timeline_note(row["timeline"])
    if note:
        row["notes"].append(note)
    return row


def idle_cost():
    """RSS and CPU ticks of each wrapper process while nothing happens."""
    rows = []
    specs = [("hupwatch (Swift)", HUPWATCH), ("original hupwatch (Python)", HUPWATCH_PY)]
    started = []
    try:
        for i, (label, exe) in enumerate(specs):
            if not exe:
                rows.append({"wrapper": label, "error": "not installed"})
                continue
            sock = os.path.join(TMP, f"idle{i}.sock")
            p = PROCS.spawn(f"idle-{i}", [exe, "--", TESTCHILD, "--socket", sock])
            started.append((label, p, sock))
        for label, p, sock in started:
            wait_http_ready(sock, 30, p)
        time.sleep(0.5)
        before = {p.pid: proc_stat(p.pid)[2] for _l, p, _s in started}
        progress(f"idle: {IDLE_SECONDS:g} s")
        time.sleep(IDLE_SECONDS)
        for label, p, _sock in started:
            st = proc_stat(p.pid)
            if st is None or p.poll() is not None:
                rows.append({"wrapper": label, "error": "exited during the idle period"})
                continue
            rows.append({"wrapper": label, "pid": p.pid, "rss_mib": rss_kib(p.pid) / 1024,
                         "ticks": st[2] - before[p.pid], "clk_tck": CLK_TCK, "seconds": IDLE_SECONDS})
    except Interrupted:
        raise
    except Exception as e:
        rows.append({"wrapper": "idle measurement", "error": str(e)})
    finally:
        sweep()
    order = [l for l, _e in specs]
    return sorted(rows, key=lambda r: order.index(r["wrapper"]) if r["wrapper"] in order else 9)


# --------------------------------------------------------------------------- throughput section

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


def throughput_backends():
    return {
        "swsgi": ("swsgi", lambda s, ka: [SWSGI, "--socket", s, "--processes", "2", "--app", "hello",
                                           "--disable-logging"], signal.SIGTERM),
        "uwsgi": ("uWSGI", uwsgi_argv, signal.SIGINT),
        "gunicorn": ("gunicorn sync", lambda s, ka: gunicorn_argv(s), signal.SIGTERM),
        "ceiling": ("nginx return 200 (ceiling)", None, signal.SIGTERM),
    }


def ceiling_conf(prefix, tag, sock):
    return (nginx_common(prefix, tag, 2) + "http {\n    access_log off;\n" + TEMP_PATHS +
            f"    server {{\n        listen unix:{sock};\n"
            "        location / {\n            default_type text/plain;\n"
            "            return 200 \"Hello, World!\\n\";\n        }\n    }\n}\n")


def median_round(runs):
    """Of one row's rounds, the one with the median requests/s (rounds that failed left out)."""
    ok = sorted((r for r in runs if not r.get("error")), key=lambda r: r["rps"])
    if not ok:
        return runs[-1]
    row = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        row["rounds_rps"] = [round(r["rps"]) if not r.get("error") else None for r in runs]
    return row


def throughput_row(key, pool, n=0):
    label, build, stop_sig = throughput_backends()[key]
    mode = "pool" if pool else "nopool"
    tag = f"tp-{key}-{mode}" + (f"-r{n + 1}" if ROUNDS > 1 else "")
    sock = os.path.join(TMP, f"t{n}-{key}-{mode}.sock")
    row = {"server": label, "key": key, "pool": pool}
    progress(f"throughput: {label}, {'keepalive 32' if pool else 'no upstream keep-alive'}")
    with row_errors(row, f"throughput {label}"):
        if key == "ceiling":
            prefix = os.path.join(TMP, f"c-{mode}")
            os.makedirs(prefix, exist_ok=True)
            backend = start_nginx(f"{tag}-backend", ceiling_conf(prefix, f"{tag}-backend", sock), prefix)
            row["command"] = f"nginx -c {LOGS}/{tag}-backend.nginx.conf"
        else:
            argv = build(sock, pool)
            row["command"] = argv
            backend = PROCS.spawn(tag, argv, stop_sig=stop_sig, cwd=TMP)
        row["ready_ms"] = wait_http_ready(sock, 60, backend) * 1000
        # measured from spawn, before nginx starts: nothing else competes for the cores
        _p, port = front_nginx(tag, sock, pool)
        code = http_get_status(socket.AF_INET, ("127.0.0.1", port))
        if code != 200:
            raise RuntimeError(f"GET through nginx answered {code}")
        warm = start_wrk(f"{tag}-warmup", port, 1, latency=False)
        wrk_result(f"{tag}-warmup", warm, 20)
        wrk = start_wrk(tag, port, DURATION)
        r = wrk_result(tag, wrk, DURATION + 30)
        row.update({k: r[k] for k in ("rps", "p50_us", "p99_us", "socket_errors", "status", "requests",
                                      "connect", "read", "write", "timeout")})
        workers = children(backend.pid)
        rss = [rss_kib(p) for p in workers]
        rss = [x for x in rss if x is not None]
        row["workers"] = len(rss)
        row["rss_worker_mib"] = (sum(rss) / len(rss) / 1024) if rss else None
        row["rss_master_mib"] = (rss_kib(backend.pid) or 0) / 1024
    return row


# ------------------------------------------------------------------------------ workers section

SLEEP_APP_PY = '''import time


def application(environ, start_response):
    seconds = float(environ.get("PATH_INFO", "/sleep/0").rsplit("/", 1)[-1] or 0)
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept\\n"]
'''

HARAKIRI_SAMPLES = env_num("HARAKIRI_SAMPLES", 20)


def harakiri_backends(sock):
    """Both kill a request running past 1 s at once (no grace), 2 workers."""
    sleep_app = os.path.join(TMP, "sleepapp.py")
    with open(sleep_app, "w") as f:
        f.write(SLEEP_APP_PY)
    rows = {"swsgi": ("swsgi --harakiri 1", [SWSGI, "--socket", sock, "--processes", "2", "--app", "sleep",
                                             "--harakiri", "1", "--disable-logging"], signal.SIGTERM)}
    if UWSGI:
        rows["uwsgi"] = ("uWSGI --harakiri 1", [UWSGI] + UWSGI_ARGS + [
            "--http-socket", sock, "--processes", "2", "--master", "--harakiri", "1", "--disable-logging",
            "--chdir", TMP, "--wsgi-file", sleep_app], signal.SIGINT)
    return rows


def harakiri_sample(sock):
    """Seconds from sending a 3 s request to the server dropping the connection, minus the 1 s limit:
    the worker is killed, so the kernel closes its end. Measured the same way for every server."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(sock)
    t0 = time.monotonic()
    c.sendall(b"GET /sleep/3 HTTP/1.0\r\nHost: x\r\n\r\n")
    got = b""
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    t1 = time.monotonic()
    c.close()
    if got.startswith(b"HTTP/1.1 200") or got.startswith(b"HTTP/1.0 200"):
        raise RuntimeError("the 3 s request was answered: no harakiri")
    return (t1 - t0 - 1.0) * 1000


def harakiri_row(key):
    sock = os.path.join(TMP, f"hk-{key}.sock")
    label, argv, stop_sig = harakiri_backends(sock)[key]
    row = {"server": label}
    progress(f"workers: harakiri precision, {label}")
    with row_errors(row, f"harakiri {label}"):
        p = PROCS.spawn(f"hk-{key}", argv, stop_sig=stop_sig, cwd=TMP)
        wait_http_ready(sock, 60, p)
        late = []
        for _ in range(HARAKIRI_SAMPLES):
            late.append(harakiri_sample(sock))
            time.sleep(0.3)  # the replacement worker settles; both servers have 2 workers anyway
        row.update({"samples": len(late), "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99),
                    "max_ms": max(late)})
    return row


def recycle_backends():
    return {
        "swsgi": ("swsgi --max-requests 100", lambda s, ka: [SWSGI, "--socket", s, "--processes", "2", "--app", "hello",
                                                              "--disable-logging", "--max-requests", "100"], signal.SIGTERM),
        "uwsgi": ("uWSGI --max-requests 100", lambda s, ka: uwsgi_argv(s, ka) + ["--max-requests", "100"], signal.SIGINT),
        "gunicorn": ("gunicorn --max-requests 100", lambda s, ka: gunicorn_argv(s) + ["--max-requests", "100"], signal.SIGTERM),
    }


def recycle_row(key, pool):
    label, build, stop_sig = recycle_backends()[key]
    mode = "pool" if pool else "nopool"
    tag = f"rc-{key}-{mode}"
    sock = os.path.join(TMP, f"rc-{key}-{mode}.sock")
    row = {"server": label, "pool": pool}
    progress(f"workers: recycling, {label}, {'keepalive 32' if pool else 'no upstream keep-alive'}")
    with row_errors(row, f"recycling {label}"):
        backend = PROCS.spawn(tag, build(sock, pool), stop_sig=stop_sig, cwd=TMP)
        wait_http_ready(sock, 60, backend)
        _p, port = front_nginx(tag, sock, pool)
        before = set(descendants(backend.pid))
        wrk = start_wrk(tag, port, DURATION)
        r = wrk_result(tag, wrk, DURATION + 30)
        row.update({k: r[k] for k in ("requests", "failed", "socket_errors", "status", "rps")})
        row["recycled_at_least"] = len(before - set(descendants(backend.pid)))
    return row


def workers_tables(hk_rows, rc_rows):
    hk = table(["server", "samples", "late p50 ms", "late p99 ms", "late max ms"],
               [[r["server"], r.get("samples", "-"), f1(r.get("p50_ms")), f1(r.get("p99_ms")), f1(r.get("max_ms"))]
                if not r.get("error") else [r["server"], "error: " + r["error"][:60], "", "", ""] for r in hk_rows])
    rc = table(["server", "nginx pool", "requests", "failed", "failed %", "req/s"],
               [[r["server"], "keepalive 32" if r["pool"] else "none", r.get("requests", "-"), r.get("failed", "-"),
                 f"{100.0 * r['failed'] / max(1, r['requests'] + r['socket_errors']):.3f}" if "failed" in r else "-",
                 f"{r['rps']:.0f}" if "rps" in r else "-"]
                if not r.get("error") else [r["server"], "keepalive 32" if r["pool"] else "none", "error: " + r["error"][:50], "", "", ""]
                for r in rc_rows])
    return (f"\n== harakiri precision: --harakiri 1, a 3 s request, time from the limit to the connection dropped "
            f"(client side, {HARAKIRI_SAMPLES} samples) ==\n" + hk
            + f"\n\n== recycling: every worker recycles every 100 requests, wrk -c{CONNECTIONS} -d{DURATION:g}s through nginx ==\n" + rc)


# ----------------------------------------------------------------------------------------- tables

def table(headers, rows, right=None):
    right = right if right is not None else set(range(1, len(headers)))
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(headers[i]), *(len(r[i]) for r in cells)) if cells else len(headers[i])
              for i in range(len(headers))]

    def fmt(r):
        return "  ".join((c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
                         for i, c in enumerate(r)).rstrip()
    lines = [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells]
    return "\n".join(lines)


def f1(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def reload_table(rows):
    out = []
    for r in rows:
        w = r.get("wrk")
        notes = list(r["notes"])
        if r.get("error"):
            notes.insert(0, "ERROR: " + r["error"])
        if w:
            errs = [f"{k} {w[k]}" for k in ("connect", "read", "write", "timeout", "status") if w[k]]
            if errs:
                notes.insert(0, "wrk: " + ", ".join(errs).replace("status", "non-2xx"))
            pct = 100.0 * w["failed"] / w["attempts"] if w["attempts"] else 0.0
            out.append([r["row"], r["setup"], w["requests"], w["failed"], f"{pct:.2f}",
                        f1(r["old_gone_p50_ms"]), f1(r["old_gone_p95_ms"]), f"{r['reloads_done']}/{RELOADS}",
                        " | ".join(notes)])
        else:
            out.append([r["row"], r["setup"], "-", "-", "-", f1(r.get("old_gone_p50_ms")),
                        f1(r.get("old_gone_p95_ms")), f"{r.get('reloads_done', 0)}/{RELOADS}", " | ".join(notes)])
    return table(["row", "setup", "requests", "failed", "failed %", "HUP->old gone p50 ms", "p95 ms",
                  "reloads", "notes"], out, right={2, 3, 4, 5, 6, 7})


def idle_table(rows):
    out = []
    for r in rows:
        if r.get("error"):
            out.append([r["wrapper"], "-", "-", r["error"]])
        else:
            out.append([r["wrapper"], f"{r['rss_mib']:.1f}", r["ticks"], ""])
    return table(["wrapper", "RSS MiB", f"CPU ticks in {IDLE_SECONDS:g} s idle ({CLK_TCK}/s)", "notes"], out,
                 right={1, 2})


def throughput_table(rows):
    out = []
    for r in rows:
        pool = "keepalive 32" if r["pool"] else "none"
        if r.get("error"):
            out.append([r["server"], pool, "-", "-", "-", "-", "-", f1(r.get("ready_ms")), "-", "ERROR: " + r["error"]])
            continue
        out.append([r["server"], pool, f"{r['rps']:.0f}", f"{r['p50_us'] / 1000:.2f}", f"{r['p99_us'] / 1000:.2f}",
                    r["socket_errors"], r["status"], f1(r["ready_ms"]), f1(r["rss_worker_mib"]),
                    "; ".join(x for x in (f"{r['workers']} workers" if r["workers"] != 2 else "",
                                          f"rounds: {r['rounds_rps']}" if r.get("rounds_rps") else "") if x)])
    text = table(["server", "upstream pool", "req/s", "p50 ms", "p99 ms", "socket err", "non-2xx",
                  "start->ready ms", "RSS/worker MiB", "notes"], out, right={2, 3, 4, 5, 6, 7, 8})
    lines = []
    for pool in (False, True):
        get = {r["key"]: r for r in rows if r["pool"] == pool and not r.get("error")}
        name = "keepalive 32" if pool else "no pool"
        sw = get.get("swsgi")
        if sw and get.get("ceiling"):
            lines.append(f"{name}: swsgi = {100 * sw['rps'] / get['ceiling']['rps']:.0f}% of the ceiling")
        if sw and get.get("uwsgi"):
            lines.append(f"{name}: swsgi / uWSGI = {sw['rps'] / get['uwsgi']['rps']:.2f}")
    return text + ("\n\n" + "\n".join(lines) if lines else "")


# ------------------------------------------------------------------------------------------- main

def versions():
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return ((r.stdout or "") + (r.stderr or "")).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            return f"unavailable ({e.__class__.__name__})"
    v = {"nginx": first_line([NGINX, "-v"]), "wrk": first_line([WRK, "-v"]),
         "hupwatch": first_line([HUPWATCH, "--version"]), "swsgi": first_line([SWSGI, "--version"])}
    v["gunicorn"] = first_line([GUNICORN, "--version"]) if GUNICORN else "not installed"
    v["uwsgi"] = first_line([UWSGI] + UWSGI_ARGS + ["--version"]) if UWSGI else "not installed"
    if HUPWATCH_PY:
        with open(HUPWATCH_PY, "rb") as f:
            shebang = f.readline().decode().strip()
        py = shebang[2:].split()[0] if shebang.startswith("#!") else sys.executable
        v["hupwatch (Python)"] = first_line([py, "-c", "import hupwatch; print('hupwatch', hupwatch.__version__)"])
    else:
        v["hupwatch (Python)"] = "not installed"
    v["cores"] = str(os.cpu_count())
    v["kernel"] = os.uname().release
    return v


def main():
    global TMP
    section = sys.argv[1] if len(sys.argv) > 1 else "all"
    if section not in ("reload", "throughput", "workers", "all"):
        sys.exit("usage: bench.py [reload|throughput|workers|all]")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (nginx workers run as root to reach the private sockets)")
    for exe in (HUPWATCH, SWSGI, TESTCHILD):
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench: {exe} missing: build with swift build -c release --static-swift-stdlib --scratch-path .build-bench")
    os.makedirs(LOGS, exist_ok=True)
    latest = os.path.join(HERE, "out", "latest")
    if os.path.islink(latest) or not os.path.exists(latest):
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(STAMP, latest)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned servers come back to us
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    for var in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "NGINX"):
        os.environ.pop(var, None)  # nothing of the caller's own supervision leaks into the servers
    TMP = tempfile.mkdtemp(prefix="hb", dir="/tmp")
    with open(os.path.join(TMP, "app.py"), "w") as f:
        f.write(APP_PY)
    settings = {"RELOADS": RELOADS, "DURATION": DURATION, "IDLE_SECONDS": IDLE_SECONDS,
                "RELOAD_TIMEOUT": RELOAD_TIMEOUT, "NGINX_WORKERS": NGINX_WORKERS, "ROUNDS": ROUNDS, "ROWS": ROWS,
                "SERVERS": ",".join(SERVERS), "connections": CONNECTIONS, "threads": THREADS}
    ver = versions()
    header = (f"Benchmarks {STAMP}: {ver['cores']} cores, kernel {ver['kernel']}, nginx worker_processes "
              f"{NGINX_WORKERS}, wrk -t{THREADS} -c{CONNECTIONS}\n"
              + "\n".join(f"  {k}: {v}" for k, v in ver.items() if k not in ("cores", "kernel")))
    tables = [header]
    print(header, flush=True)
    with open(os.path.join(OUT, "settings.json"), "w") as f:
        json.dump({"settings": settings, "versions": ver}, f, indent=2)
    try:
        if section in ("reload", "all"):
            specs = reload_specs()
            rows = [reload_row(k, specs[k]) for k in "abcdefghij" if k in ROWS]
            idle = idle_cost()
            with open(os.path.join(OUT, "reload.json"), "w") as f:
                json.dump({"rows": rows, "idle": idle}, f, indent=1)
            text = (f"\n== reload: {RELOADS} HUPs under wrk -c{CONNECTIONS} through nginx (no upstream keep-alive) ==\n"
                    + reload_table(rows)
                    + f"\n\n== wrapper idle cost: hupwatch -- TestChild --socket S, {IDLE_SECONDS:g} s idle ==\n"
                    + idle_table(idle))
            print(text, flush=True)
            tables.append(text)
        if section in ("throughput", "all"):
            rounds = []
            for n in range(ROUNDS):
                if ROUNDS > 1:
                    progress(f"throughput: round {n + 1}/{ROUNDS}")
                rounds.append([throughput_row(key, pool, n) for pool in (False, True)
                               for key in ("swsgi", "uwsgi", "gunicorn", "ceiling") if key in SERVERS])
            rows = [median_round([rnd[i] for rnd in rounds]) for i in range(len(rounds[0]))] if rounds else []
            with open(os.path.join(OUT, "throughput.json"), "w") as f:
                json.dump({"rows": rows, "rounds": rounds}, f, indent=1)
            text = (f"\n== throughput: hello world through nginx, wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION:g}s, "
                    f"2 workers each{f', median of {ROUNDS} rounds' if ROUNDS > 1 else ''} ==\n" + throughput_table(rows))
            print(text, flush=True)
            tables.append(text)
        if section in ("workers", "all"):
            hk_rows = [harakiri_row(k) for k in ("swsgi", "uwsgi") if k in SERVERS]
            rc_rows = [recycle_row(k, pool) for pool in (False, True) for k in ("swsgi", "uwsgi", "gunicorn") if k in SERVERS]
            with open(os.path.join(OUT, "workers.json"), "w") as f:
                json.dump({"harakiri": hk_rows, "recycling": rc_rows}, f, indent=1)
            text = workers_tables(hk_rows, rc_rows)
            print(text, flush=True)
            tables.append(text)
    except Interrupted as e:
        progress(f"interrupted by {e}: stopping everything")
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        left = sweep()
        if left:
            progress(f"stopped {len(left)} leftover processes")
        with open(os.path.join(OUT, "tables.txt"), "w") as f:
            f.write("\n".join(tables) + "\n")
        shutil.rmtree(TMP, ignore_errors=True)
        progress(f"raw results: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
