"""(b) Direct on TCP: wrk -> server, the server's CPU time per request and its worker RSS."""
import os
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
        user0, sys0 = common.cpu_split(pids)
        r = common.wrk(f"{server.NAME}-{module}-direct", port)
        pids = common.tree(proc.pid)
        user1, sys1 = common.cpu_split(pids)
        rss = max(common.rss_mib(p) for p in worker_pids(proc))
        per = 1e6 / max(1, r["requests"])
        return {"scenario": "direct", "server": server.NAME, "app": module, "rps": r["rps"], "failed": r["failed"],
                "requests": r["requests"], "cpu_us": (user1 - user0 + sys1 - sys0) * per,
                "user_us": (user1 - user0) * per, "sys_us": (sys1 - sys0) * per, "rss_mib": rss,
                "p99_ms": r["p99_us"] / 1000, "processes": len(pids)}
    finally:
        proc.stop()


def median_round(rounds):
    """The round with the median CPU time per request, with every round's figure beside it."""
    ok = sorted((r for r in rounds if "error" not in r), key=lambda r: r["cpu_us"])
    if not ok:
        return rounds[-1]
    row = dict(ok[(len(ok) - 1) // 2])
    row["rounds_cpu_us"] = [round(r["cpu_us"], 2) for r in rounds if "error" not in r]
    return row


def run(servers, apps=None):
    # APPS=hello: the hello rows only (a quick A/B of two builds).
    apps = apps or [a for a in os.environ.get("APPS", "hello,flask_hello").split(",") if a]
    rows = []
    for module in apps:
        rounds = {server.NAME: [] for server in servers}
        for n in range(common.ROUNDS):
            for server in servers:
                why = server.available()
                if why:
                    rounds[server.NAME] = [{"scenario": "direct", "server": server.NAME, "app": module, "error": why}]
                    continue
                common.progress(f"direct TCP: {server.NAME} {module} (round {n + 1}/{common.ROUNDS})")
                try:
                    rounds[server.NAME].append(measure(server, module))
                except Exception as e:  # one server failing must not lose the others' rows
                    rounds[server.NAME].append({"scenario": "direct", "server": server.NAME, "app": module, "error": str(e)})
                time.sleep(0.5)
        rows += [median_round(rounds[server.NAME]) for server in servers]
    return rows
