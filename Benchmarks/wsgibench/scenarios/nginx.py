"""(a) Through nginx on a Unix socket: proxy_pass without and with an upstream keep-alive pool,
uwsgi_pass where the server speaks it, against the pipeline's ceiling (nginx answering itself)."""
import os
import time

from .. import common

TEMP = "".join(f"    {d}_temp_path {{prefix}}/{d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def nginx(tag, upstream_block, location):
    prefix = os.path.join(common.TMP, f"n-{tag}")
    os.makedirs(prefix, exist_ok=True)
    port = common.free_port()
    conf = ("worker_processes 1;\ndaemon off;\nmaster_process on;\nuser root root;\n"
            f"pid {prefix}/nginx.pid;\nerror_log {common.LOGS}/{tag}.nginx-error.log error;\n"
            "events { worker_connections 4096; }\nhttp {\n    access_log off;\n" + TEMP.replace("{prefix}", prefix)
            + upstream_block + "    server {\n"
            f"        listen 127.0.0.1:{port};\n        keepalive_requests 1000000;\n"
            f"        location / {{\n{location}        }}\n    }}\n}}\n")
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    proc = common.Proc(f"{tag}.nginx", [common.NGINX, "-p", prefix + "/", "-e", f"{common.LOGS}/{tag}.nginx-error.log",
                                        "-c", path])
    common.wait_listening(port=port, proc=proc)
    return proc, port


def front(tag, sock, mode):
    if mode == "uwsgi_pass":
        return nginx(tag, "", f"            include /etc/nginx/uwsgi_params;\n            uwsgi_pass unix:{sock};\n")
    if mode == "proxy_pass":
        return nginx(tag, "", f"            proxy_pass http://unix:{sock}:;\n")
    upstream = f"    upstream app {{ server unix:{sock}; keepalive 32; }}\n"
    return nginx(tag, upstream, "            proxy_pass http://app;\n            proxy_http_version 1.1;\n"
                                "            proxy_set_header Connection \"\";\n")


def measure(tag, sock, mode, backend, server_name):
    proc, port = front(tag, sock, mode)
    try:
        common.wrk(f"{tag}-warm", port, seconds=1)
        pids = common.tree(backend.pid)
        before = common.cpu_seconds(pids)
        r = common.wrk(tag, port)
        cpu = common.cpu_seconds(common.tree(backend.pid)) - before
        return {"scenario": "nginx", "server": server_name, "mode": mode, "rps": r["rps"], "failed": r["failed"],
                "requests": r["requests"], "cpu_us": cpu / max(1, r["requests"]) * 1e6, "p99_ms": r["p99_us"] / 1000}
    finally:
        proc.stop()


def ceiling():
    """nginx answering by itself behind the same front: what the pipeline allows."""
    sock = os.path.join(common.TMP, "ceiling.sock")
    prefix = os.path.join(common.TMP, "n-ceiling-unix")
    os.makedirs(prefix, exist_ok=True)
    conf = ("worker_processes 2;\ndaemon off;\nmaster_process on;\nuser root root;\n"
            f"pid {prefix}/nginx.pid;\nerror_log {common.LOGS}/ceiling.nginx-error.log error;\n"
            "events { worker_connections 4096; }\nhttp {\n    access_log off;\n" + TEMP.replace("{prefix}", prefix)
            + f"    server {{ listen unix:{sock}; keepalive_requests 1000000; location / {{ return 200 \"Hello, World!\\n\"; }} }}\n}}\n")
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    backend = common.Proc("ceiling.backend", [common.NGINX, "-p", prefix + "/", "-e", f"{common.LOGS}/ceiling.nginx-error.log",
                                              "-c", os.path.join(prefix, "nginx.conf")])
    try:
        common.wait_listening(path=sock, proc=backend)
        return [measure(f"ceiling-{mode}", sock, mode, backend, "ceiling (nginx return 200)")
                for mode in ("proxy_pass", "proxy_pass+keepalive")]
    finally:
        backend.stop()


def run(servers):
    rows = []
    try:
        rows += ceiling()
    except Exception as e:
        rows.append({"scenario": "nginx", "server": "ceiling (nginx return 200)", "mode": "proxy_pass", "error": str(e)})
    for server in servers:
        why = server.available()
        modes = ["proxy_pass", "proxy_pass+keepalive"] + (["uwsgi_pass"] if server.NAME in ("swsgi", "uwsgi") else [])
        for mode in modes:
            if why:
                rows.append({"scenario": "nginx", "server": server.NAME, "mode": mode, "error": why})
                continue
            common.progress(f"nginx {mode}: {server.NAME}")
            sock = os.path.join(common.TMP, f"{server.NAME}-{mode}.sock")
            try:
                backend = server.start("hello", ("uwsgi-unix" if mode == "uwsgi_pass" else "http-unix", sock), common.WORKERS)
                try:
                    common.wait_listening(path=sock, proc=backend)
                    rows.append(measure(f"{server.NAME}-{mode}", sock, mode, backend, server.NAME))
                finally:
                    backend.stop()
            except Exception as e:
                rows.append({"scenario": "nginx", "server": server.NAME, "mode": mode, "error": str(e)})
            time.sleep(0.5)
    return rows
