"""Section reload: HUPs under load through nginx, and the wrappers' idle cost."""
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

from ..common import *  # noqa: F401,F403  (settings and helpers shared by every section)
from ..common import TMP, PROCS
from ..servers.gunicorn import gunicorn_argv
from ..servers.uwsgi import uwsgi_argv

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
        # Row e with rewrite mode turned off, and nginx given hupwatch's guard link (.NAME.hupwatch) as a
        # backup upstream: during the new gunicorn's rebind window the link still leads to the serving listener.
        "j": ("hupwatch --no-rewrite + gunicorn, nginx backup", "hupwatch",
              lambda s, st: hw(st, "--no-rewrite") + gunicorn_argv(s), {"backup": True}),
        # Rows e and k run in rewrite mode (hupwatch found the path in the command line): each generation
        # binds .NAME.gN and the public path is pointed at it once it is ready. No proxy change.
        "k": ("hupwatch + uWSGI --http-socket, rewrite", "hupwatch",
              lambda s, st: hw(st) + uwsgi_argv(s, False) + UWSGI_GRACEFUL_TERM),
        # Containers: hupwatch owns a TCP port, wrk talks to it directly (no nginx).
        "l": ("hupwatch --listen TCP + swsgi, wrk direct", "hupwatch",
              lambda port, st: hw(st, "--listen", f"127.0.0.1:{port}") + [SWSGI, "--processes", "2", "--disable-logging"],
              {"tcp": True}),
        "m": ("hupwatch --listen TCP + gunicorn, wrk direct", "hupwatch",
              lambda port, st: hw(st, "--listen", f"127.0.0.1:{port}") + gunicorn_argv(None), {"tcp": True}),
    }


# uWSGI 2.0 takes SIGTERM as "reload" unless told otherwise; this hook makes it the graceful stop hupwatch
# expects (in-flight requests finish; hupwatch has already let its queue drain).
UWSGI_GRACEFUL_TERM = ["--hook-master-start", "unix_signal:15 gracefully_kill_them_all"]


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
    label, kind, build, *rest = spec
    options = rest[0] if rest else {}
    tcp = options.get("tcp", False)
    tag = f"reload-{letter}"
    sock = os.path.join(TMP, f"{letter}.sock")
    status = os.path.join(TMP, f"{letter}.status.json")
    row = {"row": letter, "setup": label, "kind": kind, "reloads": [], "notes": []}
    progress(f"reload {letter}: {label}")
    try:
        if kind == "original" and not HUPWATCH_PY:
            raise RuntimeError("original hupwatch not installed")
        if tcp:
            # wrk connects to hupwatch's own TCP listener: no nginx in between.
            port = free_port()
            argv = build(port, status)
            row["command"] = argv
            wrapper = PROCS.spawn(tag, argv)
            wait_tcp_listening(port, 60, wrapper)
        else:
            argv = build(sock, status)
            row["command"] = argv
            backup = os.path.join(os.path.dirname(sock), "." + os.path.basename(sock) + ".hupwatch") if options.get("backup") else None
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


AB = shutil.which("ab") or "ab"


def ab_reload_row():
    """The original hupwatch's uwsgi_reload test: `ab -c 10 -n 3000` through nginx against uWSGI under
    hupwatch, reloaded twice while ab runs. Every request must succeed."""
    tag = "ab-reload"
    sock = os.path.join(TMP, "ab.sock")
    status = os.path.join(TMP, "ab.status.json")
    row = {"setup": "hupwatch + uWSGI --http-socket (rewrite), ab -c 10 -n 3000, 2 HUPs", "notes": []}
    progress("reload ab: " + row["setup"])
    try:
        if not shutil.which(AB):
            raise RuntimeError("ab not installed (apt-get install apache2-utils)")
        argv = [HUPWATCH, "--status-file", status, "--"] + uwsgi_argv(sock, False) + UWSGI_GRACEFUL_TERM
        _nginx, port = front_nginx(tag, sock, None, reload_logging=True)
        wrapper = PROCS.spawn(tag, argv)
        wait_http_ready(sock, 60, wrapper)
        ab = subprocess.Popen([AB, "-q", "-c", "10", "-n", "3000", f"http://127.0.0.1:{port}/"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Two HUPs right away: the second is queued behind the first, so both reloads overlap ab's run.
        time.sleep(0.05)
        first = read_status(status)
        os.kill(wrapper.pid, signal.SIGHUP)
        time.sleep(0.05)
        os.kill(wrapper.pid, signal.SIGHUP)
        out, _ = ab.communicate(timeout=120)
        t0 = time.monotonic()
        reloads = []
        while time.monotonic() - t0 < RELOAD_TIMEOUT:
            st = read_status(status)
            reloads = [r for r in st.get("reloads", []) if r["generation"] > first["current_generation"]]
            if len(reloads) >= 2 and len(st["generations"]) == 1:
                break
            time.sleep(0.01)
        reloads = [{"outcome": r["outcome"]} for r in reloads]
        def number(label):
            m = re.search(label + r":\s+(\d+)", out)
            return int(m.group(1)) if m else 0
        row["requests"] = number("Complete requests")
        row["failed"] = number("Failed requests") + number("Non-2xx responses")
        row["reloads"] = f"{sum(1 for r in reloads if r['outcome'] == 'succeeded')}/2"
        if row["requests"] != 3000:
            row["notes"].append(f"ab completed {row['requests']} of 3000")
    except Interrupted:
        raise
    except Exception as e:
        row["error"] = str(e)
        progress(f"reload ab: {e}")
    finally:
        sweep()
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
