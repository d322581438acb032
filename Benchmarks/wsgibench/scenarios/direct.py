"""(b) Direct on TCP: wrk -> server, the server's CPU time per request and its worker RSS."""
import time

from .. import common


def worker_pids(proc):
    pids = common.tree(proc.pid)
    return pids[1:] or pids  # bjoern is its own (only) worker


def measure(server, module):
    port = common.free_port()
    proc = server.start(module, ("tcp", port), common.WORKERS)
    try:
        common.wait_http(port=port, proc=proc)
        common.wrk(f"{server.NAME}-{module}-warm", port, seconds=1)
        pids = common.tree(proc.pid)
        before = common.cpu_seconds(pids)
        r = common.wrk(f"{server.NAME}-{module}-direct", port)
        pids = common.tree(proc.pid)
        cpu = common.cpu_seconds(pids) - before
        rss = max(common.rss_mib(p) for p in worker_pids(proc))
        return {"scenario": "direct", "server": server.NAME, "app": module, "rps": r["rps"], "failed": r["failed"],
                "requests": r["requests"], "cpu_us": cpu / max(1, r["requests"]) * 1e6, "rss_mib": rss,
                "p99_ms": r["p99_us"] / 1000, "processes": len(pids)}
    finally:
        proc.stop()


def run(servers, apps=("hello", "flask_hello")):
    rows = []
    for module in apps:
        for server in servers:
            why = server.available()
            if why:
                rows.append({"scenario": "direct", "server": server.NAME, "app": module, "error": why})
                continue
            common.progress(f"direct TCP: {server.NAME} {module}")
            try:
                rows.append(measure(server, module))
            except Exception as e:  # one server failing must not lose the others' rows
                rows.append({"scenario": "direct", "server": server.NAME, "app": module, "error": str(e)})
            time.sleep(0.5)
    return rows
