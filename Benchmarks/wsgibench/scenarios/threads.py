"""(c) Request threads. An I/O-bound app (each request sleeps 20 ms) direct on TCP at THREAD_CONNECTIONS
(64) connections: swsgi, uWSGI and gunicorn (gthread) with 2 processes x 4 threads, and swsgi and uWSGI
with 2 x 1 (--threads 1, the figure that must not move); requests/s, p99, failed, interleaved rounds
(the median round by requests/s). Then memory: a minimal Django project (admin, auth, ORM on SQLite),
8 workers x 4 threads after a short load: each worker's private memory (USS, smaps_rollup) and the PSS of
the whole process tree."""
import os
import subprocess
import time

from .. import common

CONNECTIONS = int(common.env_num("THREAD_CONNECTIONS", 64))
THREADS = int(common.env_num("THREADS", 4))
MEMORY_WORKERS = int(common.env_num("MEMORY_WORKERS", 8))
THREADED = {"swsgi", "swsgi-b", "uwsgi", "gunicorn"}


def fairness(port, seconds=3.0):
    """CONNECTIONS keep-alive clients, each sending GET / in a loop for `seconds`: how many connections got
    at least one answer, and the slowest connection's worst wait (a request still unanswered at the end
    counts with its age). wrk's latencies only cover requests that were answered, so a server that serves
    a few connections and leaves the rest waiting shows a low p99 there; this shows it."""
    import asyncio

    async def client(end, out):
        worst, served, started = 0.0, 0, None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while time.monotonic() < end:
                started = time.monotonic()
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=max(0.01, end - time.monotonic()))
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await asyncio.wait_for(reader.readexactly(length), timeout=max(0.01, end - time.monotonic()))
                worst = max(worst, time.monotonic() - started)
                served += 1
                started = None
            writer.close()
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        if started is not None:
            worst = max(worst, time.monotonic() - started)
        out.append((served, worst))

    async def main():
        out = []
        end = time.monotonic() + seconds
        await asyncio.gather(*(client(end, out) for _ in range(CONNECTIONS)))
        return out

    results = asyncio.run(main())
    return sum(1 for served, _ in results if served > 0), max(w for _, w in results) * 1000


def io_measure(server, threads):
    port = common.free_port()
    proc = server.start("io_sleep", ("tcp", port), common.WORKERS, threads=threads)
    try:
        common.wait_http(port=port, proc=proc)
        common.wrk(f"{server.NAME}-io-t{threads}-warm", port, seconds=1, connections=CONNECTIONS)
        r = common.wrk(f"{server.NAME}-io-t{threads}", port, connections=CONNECTIONS)
        rss = max(common.rss_mib(p) for p in common.tree(proc.pid)[1:] or [proc.pid])
        served, worst_ms = fairness(port)
        return {"scenario": "threads", "server": server.NAME, "threads": threads, "rps": r["rps"],
                "p99_ms": r["p99_us"] / 1000, "failed": r["failed"], "requests": r["requests"], "rss_mib": rss,
                "connections_served": served, "worst_wait_ms": worst_ms}
    finally:
        proc.stop()


def migrate():
    """The Django project's SQLite tables (once per run)."""
    subprocess.run([common.venv_bin("python3"), "-c",
                    "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djsite.settings'); django.setup();"
                    "from django.core.management import call_command; call_command('migrate', verbosity=0)"],
                   cwd=common.TMP, check=True, capture_output=True, timeout=300)


def memory_measure(server):
    port = common.free_port()
    proc = server.start("djapp", ("tcp", port), MEMORY_WORKERS, threads=THREADS)
    try:
        common.wait_http(port=port, proc=proc, timeout=60)
        r = common.wrk(f"{server.NAME}-django-load", port, seconds=3, connections=32)
        time.sleep(1)
        pids = common.tree(proc.pid)
        workers = [p for p in pids if p != proc.pid]
        uss = sorted(common.smaps_rollup(p)[0] for p in workers)
        pss = sum(common.smaps_rollup(p)[1] for p in pids)
        return {"scenario": "memory", "server": server.NAME, "workers": len(workers), "threads": THREADS,
                "uss_median_mib": uss[len(uss) // 2] if uss else 0.0, "uss_max_mib": uss[-1] if uss else 0.0,
                "pss_total_mib": pss, "load_rps": r["rps"], "failed": r["failed"]}
    finally:
        proc.stop()


def run(servers):
    servers = [s for s in servers if s.NAME in THREADED]
    cases = [(s, THREADS) for s in servers] + [(s, 1) for s in servers if s.NAME in ("swsgi", "swsgi-b", "uwsgi")]
    rounds = {(s.NAME, t): [] for s, t in cases}
    rows = []
    for n in range(common.ROUNDS):
        for server, threads in cases:
            why = server.available()
            if why:
                rounds[(server.NAME, threads)] = [{"scenario": "threads", "server": server.NAME, "threads": threads, "error": why}]
                continue
            common.progress(f"I/O-bound app, {common.WORKERS} x {threads} threads: {server.NAME} (round {n + 1}/{common.ROUNDS})")
            try:
                rounds[(server.NAME, threads)].append(io_measure(server, threads))
            except Exception as e:  # one server failing must not lose the others' rows
                rounds[(server.NAME, threads)].append({"scenario": "threads", "server": server.NAME, "threads": threads, "error": str(e)})
            time.sleep(0.5)
    for key in rounds:
        ok = sorted((r for r in rounds[key] if "error" not in r), key=lambda r: r["rps"])
        if not ok:
            rows.append(rounds[key][-1])
            continue
        row = dict(ok[(len(ok) - 1) // 2])
        row["rounds_rps"] = [round(r["rps"]) for r in rounds[key] if "error" not in r]
        rows.append(row)
    try:
        migrate()
    except Exception as e:
        return rows + [{"scenario": "memory", "server": s.NAME, "error": f"Django migrate failed: {e}"} for s in servers]
    for server in servers:
        common.progress(f"Django memory, {MEMORY_WORKERS} x {THREADS} threads: {server.NAME}")
        try:
            rows.append(memory_measure(server))
        except Exception as e:
            rows.append({"scenario": "memory", "server": server.NAME, "error": str(e)})
    return rows
