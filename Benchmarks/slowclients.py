#!/usr/bin/env python3
"""Slow and idle clients against swsgi (issue 10), loopback only, about 40 s. Standard library only.

    Benchmarks/slowclients.py

Environment: SWSGI (binary; default .build/release then .build/debug), IDLE=1000, SLOW=200,
HEADER_TIMEOUT=10, PROCESSES=2, THREADS=1 (--threads: request threads per worker).

swsgi --http-socket 127.0.0.1:PORT --app hello. A fast client sends GET / on a new connection each
time, one after another, for 6 s: first on a quiet server (its p50/p99), then while IDLE connections
sit open without sending a byte and SLOW connections send a request head one byte a second. The
verdict: the fast client's p99 under attack stays within 3x its quiet p99. Then every hostile
connection must be closed by the header timeout (counted from accept): with 408 where a head was
started, silently where nothing was sent, and not much later than HEADER_TIMEOUT.
"""
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IDLE = int(os.environ.get("IDLE", "1000"))
SLOW = int(os.environ.get("SLOW", "200"))
HEADER_TIMEOUT = float(os.environ.get("HEADER_TIMEOUT", "10"))
PROCESSES = int(os.environ.get("PROCESSES", "2"))
THREADS = int(os.environ.get("THREADS", "1"))


def binary():
    if os.environ.get("SWSGI"):
        return os.environ["SWSGI"]
    for d in ("release", "debug"):
        p = os.path.join(ROOT, ".build", d, "swsgi")
        if os.access(p, os.X_OK):
            return p
    sys.exit("slowclients: swsgi not built (swift build -c release)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def fast_client(port, seconds):
    """Latencies (ms) of sequential GET / on fresh connections; failures counted apart."""
    lat, failed = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            s.close()
            if data.startswith(b"HTTP/1.1 200"):
                lat.append((time.monotonic() - t0) * 1000)
            else:
                failed += 1
        except OSError:
            failed += 1
    return lat, failed


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # swsgi inherits it
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="slow.", dir="/tmp")
    logf = open(os.path.join(tmp, "swsgi.log"), "w")
    srv = subprocess.Popen([binary(), "--http-socket", f"127.0.0.1:{port}", "--processes", str(PROCESSES),
                            "--header-timeout", str(HEADER_TIMEOUT), "--listen", "4096", "--disable-logging", "--log-4xx"]
                           + (["--threads", str(THREADS)] if THREADS > 1 else []),
                           stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        fast_client(port, 1)  # warm-up
        quiet, quiet_failed = fast_client(port, 6)

        # The attack: idle connections first, then slow heads, all opened before measuring.
        idle, slow = [], []
        t_open = {}
        for _ in range(IDLE):
            s = socket.create_connection(("127.0.0.1", port))
            t_open[s] = time.monotonic()
            idle.append(s)
        head = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 64 + b"\r\n\r\n"
        for _ in range(SLOW):
            s = socket.create_connection(("127.0.0.1", port))
            t_open[s] = time.monotonic()
            s.setblocking(False)
            slow.append(s)
        closed_at, answer = {}, {}
        stop = threading.Event()

        def attacker():
            sel = selectors.DefaultSelector()
            for s in idle + slow:
                sel.register(s, selectors.EVENT_READ)
            sent = {s: 0 for s in slow}
            next_byte = time.monotonic()
            while not stop.is_set() and len(closed_at) < len(idle) + len(slow):
                now = time.monotonic()
                if now >= next_byte:
                    for s in slow:
                        if s not in closed_at and sent[s] < len(head):
                            try:
                                s.send(head[sent[s]:sent[s] + 1])
                                sent[s] += 1
                            except OSError:
                                pass
                    next_byte += 1.0
                for key, _ in sel.select(timeout=max(0.0, min(0.2, next_byte - time.monotonic()))):
                    s = key.fileobj
                    try:
                        b = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        b = b""
                    if b:
                        answer[s] = answer.get(s, b"") + b
                    else:
                        closed_at[s] = time.monotonic()
                        sel.unregister(s)

        for s in idle:
            s.setblocking(False)
        t = threading.Thread(target=attacker, daemon=True)
        t.start()
        time.sleep(0.5)
        attacked, attacked_failed = fast_client(port, min(6.0, HEADER_TIMEOUT - 2))
        t.join(HEADER_TIMEOUT + 10)
        stop.set()

        def life(s):
            return closed_at[s] - t_open[s] if s in closed_at else None

        slow_408 = sum(1 for s in slow if answer.get(s, b"").startswith(b"HTTP/1.1 408"))
        slow_closed = [life(s) for s in slow if life(s) is not None]
        idle_closed = [life(s) for s in idle if life(s) is not None]
        idle_answered = sum(1 for s in idle if answer.get(s))
        print()
        print("| fast client | requests | failed | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        print(f"| quiet | {len(quiet)} | {quiet_failed} | {statistics.median(quiet):.2f} | {pct(quiet, 0.99):.2f} |")
        print(f"| {IDLE} idle + {SLOW} one-byte-a-second heads | {len(attacked)} | {attacked_failed} | "
              f"{statistics.median(attacked):.2f} | {pct(attacked, 0.99):.2f} |")
        ratio = pct(attacked, 0.99) / pct(quiet, 0.99)
        print(f"\np99 ratio under attack: {ratio:.2f} (limit 3.0): {'PASS' if ratio <= 3.0 else 'FAIL'}")
        print(f"slow heads: {len(slow_closed)}/{SLOW} closed, {slow_408} answered 408; "
              f"closed after {min(slow_closed or [0]):.2f}-{max(slow_closed or [0]):.2f} s (header timeout {HEADER_TIMEOUT:.0f} s)")
        print(f"idle connections: {len(idle_closed)}/{IDLE} closed, {idle_answered} answered anything; "
              f"closed after {min(idle_closed or [0]):.2f}-{max(idle_closed or [0]):.2f} s")
        on_time = all(c <= HEADER_TIMEOUT + 1.5 for c in slow_closed + idle_closed)
        ok = ratio <= 3.0 and len(slow_closed) == SLOW and slow_408 == SLOW and len(idle_closed) == IDLE \
            and idle_answered == 0 and on_time
        print(f"verdict: {'PASS' if ok else 'FAIL'}")
        for s in idle + slow:
            s.close()
    finally:
        srv.terminate()
        try:
            srv.wait(15)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        logf.close()


if __name__ == "__main__":
    main()
