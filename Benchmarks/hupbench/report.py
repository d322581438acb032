"""The tables every section prints."""
from .common import CLK_TCK, CONNECTIONS, DURATION, IDLE_SECONDS, RELOADS
from .scenarios.workers import HARAKIRI_SAMPLES


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
