"""Tables (Markdown, printed and written) and an SVG bar chart of the same figures."""
import json
import os

from . import common


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)] if rows else [len(h) for h in headers]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def f(x, nd=1):
    return f"{x:,.{nd}f}" if isinstance(x, (int, float)) else str(x)


def direct_table(rows):
    out = []
    for r in rows:
        if r["scenario"] != "direct":
            continue
        if "error" in r:
            out.append([r["server"], r["app"], "-", "-", "-", "-", "-", "-", r["error"][:60]])
        else:
            rounds = " ".join(f(x, 2) for x in r.get("rounds_cpu_us", []))
            out.append([r["server"], r["app"], f(r["cpu_us"], 2), f"{f(r['user_us'], 2)} + {f(r['sys_us'], 2)}", rounds,
                        f(r["rps"], 0), f(r["rss_mib"]), f(r["p99_ms"], 2), r["failed"]])
    return table(["server", "app", "CPU µs/request (median)", "user + sys", "every round", "requests/s", "worker RSS MiB",
                  "p99 ms", "failed"], out)


def nginx_table(rows):
    out = []
    ceiling = {r["mode"]: r["rps"] for r in rows if r["scenario"] == "nginx" and r["server"].startswith("ceiling") and "rps" in r}
    for r in rows:
        if r["scenario"] != "nginx":
            continue
        if "error" in r:
            out.append([r["server"], r["mode"], "-", "-", "-", r["error"][:60]])
            continue
        top = ceiling.get(r["mode"]) or ceiling.get("proxy_pass")
        share = f"{100 * r['rps'] / top:.0f}%" if top else "-"
        out.append([r["server"], r["mode"], f(r["rps"], 0), share, f(r["cpu_us"]), r["failed"]])
    return table(["server", "nginx ->", "requests/s", "of ceiling", "server CPU µs/request", "failed"], out)


def threads_table(rows):
    out = []
    for r in rows:
        if r["scenario"] != "threads":
            continue
        if "error" in r:
            out.append([r["server"], r.get("threads", "-"), "-", "-", "-", "-", "-", "-", "-", r["error"][:60]])
            continue
        rounds = " ".join(str(x) for x in r.get("rounds_rps", []))
        out.append([r["server"], f"{common.WORKERS} x {r['threads']}", f(r["rps"], 0), rounds, f(r["p99_ms"], 1), r["failed"],
                    f"{r.get('connections_served', '-')}", f(r.get("worst_wait_ms", "-"), 0), f(r["rss_mib"]), ""])
    from .scenarios import threads
    return table(["server", "processes x threads", "requests/s (median)", "every round", "wrk p99 ms", "failed",
                  f"connections answered (of {threads.CONNECTIONS}, 3 s)", "worst wait ms", "worker RSS MiB", "notes"], out)


def memory_table(rows):
    out = []
    for r in rows:
        if r["scenario"] != "memory":
            continue
        if "error" in r:
            out.append([r["server"], "-", "-", "-", "-", "-", r["error"][:60]])
            continue
        out.append([r["server"], f"{r['workers']} x {r['threads']}", f(r["uss_median_mib"]), f(r["uss_max_mib"]),
                    f(r["pss_total_mib"]), f"{f(r['load_rps'], 0)} / {r['failed']}", ""])
    return table(["server", "workers x threads", "USS per worker MiB (median)", "USS max MiB", "PSS of the tree MiB",
                  "load req/s / failed", "notes"], out)


def svg(rows):
    """Two panels of horizontal bars: direct CPU µs/request (hello) and requests/s through nginx."""
    panels = [
        ("CPU µs per request, direct on TCP (hello; lower is better)",
         [(r["server"], r["cpu_us"]) for r in rows if r["scenario"] == "direct" and r.get("app") == "hello" and "cpu_us" in r]),
        ("requests/s through nginx, keep-alive pool (higher is better)",
         [(r["server"], r["rps"]) for r in rows if r["scenario"] == "nginx" and r.get("mode") == "proxy_pass+keepalive" and "rps" in r]),
        ("requests/s through nginx, uwsgi_pass",
         [(r["server"], r["rps"]) for r in rows if r["scenario"] == "nginx" and r.get("mode") == "uwsgi_pass" and "rps" in r]),
    ]
    width, bar, gap, label_w = 760, 18, 6, 200
    parts, y = [], 20
    for title, bars in panels:
        if not bars:
            continue
        parts.append(f'<text x="10" y="{y}" font-size="14" font-weight="bold">{title}</text>')
        y += 10
        top = max(v for _, v in bars) or 1
        for name, v in bars:
            w = (width - label_w - 90) * v / top
            color = "#d9534f" if name == "swsgi" else "#5b8def"
            parts.append(f'<text x="10" y="{y + bar - 4}" font-size="12">{name}</text>')
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>')
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar - 4}" font-size="12">{v:,.1f}</text>')
            y += bar + gap
        y += 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n")


def write(rows, header):
    text = header + "\n"
    if any(r["scenario"] == "direct" for r in rows):
        text += f"\n## (b) Direct on TCP ({common.WORKERS} workers, wrk {common.CONNECTIONS} connections)\n\n" + direct_table(rows) + "\n"
    if any(r["scenario"] == "nginx" for r in rows):
        text += f"\n## (a) Through nginx on a Unix socket ({common.WORKERS} workers)\n\n" + nginx_table(rows) + "\n"
    if any(r["scenario"] == "threads" for r in rows):
        from .scenarios import threads
        text += (f"\n## (c) I/O-bound app (20 ms sleep per request), direct on TCP, wrk {threads.CONNECTIONS} connections\n\n"
                 + threads_table(rows) + "\n")
    if any(r["scenario"] == "memory" for r in rows):
        text += "\n## (c) Django (admin, auth, ORM on SQLite) after a 3 s load: memory\n\n" + memory_table(rows) + "\n"
    with open(os.path.join(common.OUT, "wsgi.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(common.OUT, "wsgi.svg"), "w") as fh:
        fh.write(svg(rows))
    with open(os.path.join(common.OUT, "wsgi.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    print(text)
    print(f"tables, chart and raw rows: {os.path.relpath(common.OUT)}/wsgi.md, wsgi.svg, wsgi.json")
