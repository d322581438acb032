#!/usr/bin/env python3
"""Chaos under load for swsgi (issue 10), loopback only and bounded in time. Standard library only.

    Benchmarks/chaos.py            (run as root: nginx workers run as root to reach the 0700 temp folder)

Environment: SWSGI, HUPWATCH (binaries; default .build/release then .build/debug), NGINX (default nginx),
KILL_SECONDS=15, RELOADS=1000, HUPWATCH_RELOADS=100, CLIENTS=8.

For each of hupwatch's two socket modes (--listen: hupwatch owns the listener; rebind: swsgi binds
--socket itself), with `hupwatch --on-exit restart -- swsgi --app sleep --processes 4` behind nginx
(`proxy_next_upstream off`, so nginx never hides a failure by retrying) and CLIENTS keep-alive clients
sending GET /sleep/0.02 the whole time:
  1. SIGKILL a random worker every 0.5 s for KILL_SECONDS s;
  2. SIGKILL the swsgi master once (hupwatch restarts it);
  3. HUP storms: 20 HUPs to hupwatch 0.25 s apart, then 50 HUPs to the swsgi master 0.05 s apart.
Each phase reports requests failed against requests in flight on the killed processes (read from the
--stats socket just before each kill: a busy worker holds exactly one request).
Then: fds and RSS of the swsgi master before/after RELOADS worker reloads (SIGHUP), and of hupwatch
before/after HUPWATCH_RELOADS generation reloads; and processes left after stopping hupwatch (orphans).
"""
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def binary(env, name):
    if os.environ.get(env):
        return os.environ[env]
    for d in ("release", "debug"):
        p = os.path.join(ROOT, ".build", d, name)
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"chaos: {name} not built (swift build -c release)")


SWSGI = binary("SWSGI", "swsgi")
HUPWATCH = binary("HUPWATCH", "hupwatch")
NGINX = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
KILL_SECONDS = float(os.environ.get("KILL_SECONDS", "15"))
RELOADS = int(os.environ.get("RELOADS", "1000"))
HUPWATCH_RELOADS = int(os.environ.get("HUPWATCH_RELOADS", "100"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None


def wait_until(timeout, cond, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stats(path):
    """The --stats JSON, or None."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(path)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return json.loads(data)
    except (OSError, ValueError):
        return None


class Load:
    """CLIENTS threads, each a keep-alive client to nginx; counts ok and failed requests by time."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []  # monotonic times of failed requests
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def client(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/sleep/0.02")
                r = conn.getresponse()
                r.read()
                good = r.status == 200
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                good = False
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failures.append(time.monotonic())

    def counts(self):
        with self.lock:
            return self.ok, len(self.failures)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def nginx_conf(prefix, port, sock):
    return f"""worker_processes 1;
daemon off;
master_process on;
user root root;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream backend {{
        server unix:{sock} max_fails=0;
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
        }}
    }}
}}
"""


class Stack:
    """nginx -> hupwatch --on-exit restart -> swsgi, in one temp folder."""

    def __init__(self, mode, tmp):
        self.mode = mode
        self.dir = os.path.join(tmp, mode)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "app.sock")
        self.log = open(os.path.join(self.dir, "hupwatch.log"), "w")
        # Each generation its own stats socket: two generations overlap during a reload.
        cmd = (f'exec {SWSGI} --processes 4 --app sleep --worker-reload-mercy 5 '
               f'--stats {self.dir}/stats.$HUPWATCH_GENERATION --procname-prefix chaos-{os.getpid()}- '
               + ("" if mode == "listen" else f"--socket {self.sock}"))
        sock_args = ["--listen", self.sock] if mode == "listen" else ["--socket", self.sock]
        self.hupwatch = subprocess.Popen([HUPWATCH, "--on-exit", "restart", "--ready", "notify", "--graceful-timeout", "10",
                                          *sock_args, "--", "/bin/sh", "-c", cmd],
                                         stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(15, lambda: self.master() is not None and len(children(self.master())) == 4
                          and os.path.exists(self.sock)):
            raise RuntimeError(f"{mode}: swsgi did not start; see {self.dir}/hupwatch.log")
        self.port = free_port()
        prefix = os.path.join(self.dir, "nginx")
        os.makedirs(prefix)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(nginx_conf(prefix, self.port, self.sock))
        self.nginx = subprocess.Popen([NGINX, "-p", prefix + "/", "-e", prefix + "/nginx-error.log", "-c", prefix + "/nginx.conf"],
                                      start_new_session=True)
        if not wait_until(10, lambda: self.port_open()):
            raise RuntimeError("nginx did not start")

    def port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def master(self):
        """The serving swsgi master: hupwatch's newest child that has workers (the sh execs swsgi)."""
        kids = children(self.hupwatch.pid)
        with_workers = [k for k in kids if children(k)]
        return max(with_workers) if with_workers else (max(kids) if kids else None)

    def stats_path(self, master):
        for name in os.listdir(self.dir):
            if name.startswith("stats."):
                p = os.path.join(self.dir, name)
                s = stats(p)
                if s and s.get("pid") == master:
                    return p
        return None

    def busy_pids(self, master):
        p = self.stats_path(master)
        s = stats(p) if p else None
        if not s:
            return None
        return {w["pid"] for w in s["workers"] if w["status"] == "busy"}

    def stop(self):
        self.nginx.terminate()
        try:
            self.nginx.wait(15)
        except subprocess.TimeoutExpired:
            self.nginx.kill()
            self.nginx.wait()
        self.hupwatch.send_signal(signal.SIGTERM)
        try:
            self.hupwatch.wait(30)
        except subprocess.TimeoutExpired:
            self.hupwatch.kill()
            self.hupwatch.wait()
        self.log.close()


def orphans(tag):
    """Processes still running whose command line names our temp folder or process-title prefix."""
    left = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if tag in cmd and alive(int(name)):
            left.append((int(name), cmd[:100]))
    return left


def phase(load, fn):
    ok0, failed0 = load.counts()
    in_flight, notes = fn()
    time.sleep(1.0)  # requests cut by the last action are counted when their client sees the error
    ok1, failed1 = load.counts()
    return {"ok": ok1 - ok0, "failed": failed1 - failed0, "in_flight_on_killed": in_flight, "notes": notes}


def kill_workers(stack):
    def run():
        in_flight, kills, unknown = 0, 0, 0
        end = time.monotonic() + KILL_SECONDS
        while time.monotonic() < end:
            m = stack.master()
            workers = children(m) if m else []
            if workers:
                victim = random.choice(workers)
                busy = stack.busy_pids(m)
                if busy is None:
                    unknown += 1
                elif victim in busy:
                    in_flight += 1
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        return in_flight, f"{kills} workers killed" + (f", {unknown} with stats unreadable" if unknown else "")
    return run


def kill_master(stack):
    def run():
        m = stack.master()
        busy = stack.busy_pids(m) or set()
        t0 = time.monotonic()
        os.kill(m, signal.SIGKILL)
        ok = wait_until(15, lambda: stack.master() not in (None, m) and len(children(stack.master())) == 4)
        return len(busy), f"master {m} killed; a new master with 4 workers in {time.monotonic() - t0:.2f} s" + ("" if ok else " (NOT back)")
    return run


def hup_storms(stack):
    def run():
        for _ in range(20):
            stack.hupwatch.send_signal(signal.SIGHUP)
            time.sleep(0.25)
        wait_until(30, lambda: stack.master() is not None and len(children(stack.hupwatch.pid)) == 1)
        m = stack.master()
        for _ in range(50):
            os.kill(m, signal.SIGHUP)
            time.sleep(0.05)
        return 0, "20 HUPs to hupwatch, 50 to the swsgi master"
    return run


def reload_flatness(stack):
    m = stack.master()
    before = (fd_count(m), rss_kib(m), fd_count(stack.hupwatch.pid), rss_kib(stack.hupwatch.pid))
    t0 = time.monotonic()
    for i in range(RELOADS):
        old = set(children(m))
        os.kill(m, signal.SIGHUP)
        # wait until every worker is a new one (the old generation of workers retired)
        wait_until(10, lambda: len(set(children(m)) & old) == 0 and len(children(m)) == 4, step=0.002)
    worker_reload_s = time.monotonic() - t0
    after_master = (fd_count(m), rss_kib(m))
    t0 = time.monotonic()
    for i in range(HUPWATCH_RELOADS):
        cur = stack.master()
        stack.hupwatch.send_signal(signal.SIGHUP)
        wait_until(30, lambda: stack.master() not in (None, cur) and len(children(stack.hupwatch.pid)) == 1, step=0.005)
    hup_s = time.monotonic() - t0
    after_hup = (fd_count(stack.hupwatch.pid), rss_kib(stack.hupwatch.pid))
    return {"master_fds": (before[0], after_master[0]), "master_rss_kib": (before[1], after_master[1]),
            "worker_reloads": RELOADS, "worker_reload_seconds": round(worker_reload_s, 1),
            "hupwatch_fds": (before[2], after_hup[0]), "hupwatch_rss_kib": (before[3], after_hup[1]),
            "hupwatch_reloads": HUPWATCH_RELOADS, "hupwatch_reload_seconds": round(hup_s, 1)}


def main():
    if os.geteuid() != 0:
        sys.exit("chaos: run as root (nginx workers must reach the private temp folder)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    tmp = tempfile.mkdtemp(prefix="chaos.", dir="/tmp")
    log(f"swsgi {SWSGI}, hupwatch {HUPWATCH}, temp {tmp}")
    results = {}
    tag = f"chaos-{os.getpid()}-"
    for mode in ("listen", "rebind"):
        stack = Stack(mode, tmp)
        load = Load(stack.port)
        try:
            time.sleep(1)
            rows = {}
            log(f"{mode}: killing a random worker every 0.5 s for {KILL_SECONDS:.0f} s")
            rows["kill workers"] = phase(load, kill_workers(stack))
            log(f"{mode}: killing the master")
            rows["kill master"] = phase(load, kill_master(stack))
            log(f"{mode}: HUP storms")
            rows["HUP storms"] = phase(load, hup_storms(stack))
            load.finish()
            if mode == "listen":
                log(f"{mode}: {RELOADS} worker reloads, {HUPWATCH_RELOADS} hupwatch reloads")
                rows["flatness"] = reload_flatness(stack)
        finally:
            load.finish()
            stack.stop()
        time.sleep(1)
        rows["orphans after stop"] = orphans(tag) + orphans(stack.dir)
        results[mode] = rows
    print()
    print("| mode | phase | ok | failed | in flight on killed processes | notes |")
    print("|---|---|---:|---:|---:|---|")
    for mode, rows in results.items():
        for name in ("kill workers", "kill master", "HUP storms"):
            r = rows[name]
            print(f"| {mode} | {name} | {r['ok']} | {r['failed']} | {r['in_flight_on_killed']} | {r['notes']} |")
    for mode, rows in results.items():
        print(f"\n{mode}: orphans after stop: {len(rows['orphans after stop'])} {rows['orphans after stop'] or ''}")
    f = results["listen"].get("flatness")
    if f:
        print(f"\nswsgi master after {f['worker_reloads']} worker reloads ({f['worker_reload_seconds']} s): "
              f"fds {f['master_fds'][0]} -> {f['master_fds'][1]}, RSS {f['master_rss_kib'][0]} -> {f['master_rss_kib'][1]} KiB")
        print(f"hupwatch after {f['hupwatch_reloads']} generation reloads ({f['hupwatch_reload_seconds']} s): "
              f"fds {f['hupwatch_fds'][0]} -> {f['hupwatch_fds'][1]}, RSS {f['hupwatch_rss_kib'][0]} -> {f['hupwatch_rss_kib'][1]} KiB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
