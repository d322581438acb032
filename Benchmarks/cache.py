#!/usr/bin/env python3
"""Shared-cache throughput: swsgi's Cache against uWSGI's cache2, 2 workers hammering one cache.

    Benchmarks/cache.py [--ops N] [--rounds R] [--timer-seconds S]

Each server runs 2 workers and one cache (1000 items, 128-byte blocks, 32-byte keys). One HTTP
request per worker starts, at the same wall-clock instant, a loop of N (update + get) pairs over 256
keys with 64-byte values, inside the worker: swsgi's Swift `Cache` API (ServicesExample, release
build) and uWSGI's Python `uwsgi.cache_update` / `uwsgi.cache_get` (Debian's uwsgi 2.0.21 with its
python3 plugin), and the same Python file under swsgi (its `uwsgi` module, the python3 on PATH). Reported: operations per second over both workers (total operations / the slower
worker's time), best and median of R rounds. uWSGI's figure includes CPython's call overhead
(~50-100 ns per call); swsgi's includes Swift's String -> bytes conversion of each key.
With --timer-seconds S (default 60), it also runs a 100 ms timer on swsgi's idle workers for S seconds
and reports how late each run started against its schedule (p50, p99, max, share within 10 ms).
Needs: swift on PATH, uwsgi + uwsgi-plugin-python3 (Tests/run installs both), curl.
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UWSGI_APP = r'''
import time, uwsgi
def application(env, start):
    qs = dict(p.split('=') for p in env.get('QUERY_STRING', '').split('&') if '=' in p)
    n = int(qs.get('ops', '1000'))
    at = int(qs.get('at', '0'))
    keys = ['k%d' % i for i in range(256)]
    value = b'x' * 64
    while time.time_ns() < at:
        time.sleep(0.0002)
    t = time.perf_counter_ns()
    for i in range(n):
        k = keys[i & 255]
        uwsgi.cache_update(k, value, 0, 'bench')
        uwsgi.cache_get(k, 'bench')
    el = time.perf_counter_ns() - t
    start('200 OK', [('Content-Type', 'text/plain')])
    return [b'%d %d\n' % (2 * n, el)]
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_http(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f'nothing listens on {port} after {timeout} s')


def round_trip(port, ops):
    """Two concurrent requests starting at the same instant; (operations, slowest elapsed ns)."""
    at = time.time_ns() + 300_000_000
    url = f'http://127.0.0.1:{port}/bench/cache?c=bench&ops={ops}&at={at}'
    procs = [subprocess.Popen(['curl', '-sS', '-D', '-', url], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    total, slowest = 0, 0
    for out in outs:
        head, _, body = out.replace('\r\n', '\n').partition('\n\n')
        n, el = body.split()
        total += int(n)
        slowest = max(slowest, int(el))
    return total, slowest


def measure(name, argv, port, ops, rounds, env=None):
    log = tempfile.NamedTemporaryFile(prefix=f'cachebench-{name}-', suffix='.log', delete=False)
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(port)
        round_trip(port, ops // 10)  # warm up both workers
        rates = []
        for _ in range(rounds):
            total, slowest = round_trip(port, ops)
            rates.append(total / (slowest / 1e9))
        return rates, None
    except Exception as e:  # a row that fails says why; the run goes on
        return [], f'{e} (log: {log.name})'
    finally:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ops', type=int, default=500_000, help='update+get pairs per worker per round')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--timer-seconds', type=float, default=60, help='0 skips the timer precision run')
    a = ap.parse_args()

    print('building ServicesExample (release)...', file=sys.stderr)
    build = subprocess.run(['swift', 'build', '-c', 'release', '--product', 'ServicesExample', '--scratch-path',
                            os.path.join(ROOT, '.build-bench')], cwd=ROOT, capture_output=True, text=True)
    if build.returncode == 0:
        build = subprocess.run(['swift', 'build', '-c', 'release', '--product', 'swsgi', '--scratch-path',
                                os.path.join(ROOT, '.build-bench')], cwd=ROOT, capture_output=True, text=True)
    if build.returncode != 0:
        sys.exit(f'cache.py: swift build failed:\n{build.stdout[-4000:]}{build.stderr[-2000:]}')
    example = os.path.join(ROOT, '.build-bench', 'release', 'ServicesExample')
    swsgi = os.path.join(ROOT, '.build-bench', 'release', 'swsgi')
    cache = 'name=bench,items=1000,blocksize=128,keysize=32'
    rows = []
    port = free_port()
    rows.append(('swsgi Cache (Swift)',) + measure('swsgi', [example, '--processes', '2', '--http-socket', f'127.0.0.1:{port}',
                                                           '--cache2', cache, '--disable-logging'], port, a.ops, a.rounds))
    workdir = tempfile.mkdtemp(prefix='cachebench-')
    with open(os.path.join(workdir, 'app.py'), 'w') as f:
        f.write(UWSGI_APP)
    port = free_port()
    rows.append(('swsgi uwsgi module (Python API)',) + measure(
        'swsgi-python', [swsgi, '--processes', '2', '--http-socket', f'127.0.0.1:{port}',
                         '--wsgi-file', os.path.join(workdir, 'app.py'), '--cache2', cache, '--disable-logging'],
        port, a.ops, a.rounds))
    port = free_port()
    if shutil.which('uwsgi'):
        rows.append(('uWSGI 2.0 cache2 (Python API)',) + measure(
            'uwsgi', ['uwsgi', '--plugin', 'python3', '--master', '--processes', '2', '--http-socket', f'127.0.0.1:{port}',
                      '--wsgi-file', os.path.join(workdir, 'app.py'), '--cache2', cache, '--disable-logging'],
            port, a.ops, a.rounds))
    else:
        rows.append(('uWSGI 2.0 cache2 (Python API)', [], 'uwsgi not installed (apt-get install uwsgi uwsgi-plugin-python3)'))
    shutil.rmtree(workdir, ignore_errors=True)

    print(f'\nShared cache, 2 workers at once, {a.ops:,} update+get pairs each, {a.rounds} rounds '
          f'({os.cpu_count()} cores)\n')
    print(f'{"server":34} {"best ops/s":>14} {"median ops/s":>14}  notes')
    for name, rates, note in rows:
        if rates:
            print(f'{name:34} {max(rates):>14,.0f} {statistics.median(rates):>14,.0f}  {note or ""}')
        else:
            print(f'{name:34} {"-":>14} {"-":>14}  {note}')

    if a.timer_seconds > 0:
        late = sorted(timer_precision(example, a.timer_seconds))
        if late:
            q = lambda f: late[min(len(late) - 1, int(f * len(late)))]
            within = sum(1 for v in late if v <= 10_000)
            print(f'\nTimer every 100 ms on an idle worker, {a.timer_seconds:g} s: {len(late)} runs; start after schedule: '
                  f'p50 {q(0.5)} us, p99 {q(0.99)} us, max {late[-1]} us; {within} of {len(late)} within 10 ms')
        else:
            print('\nTimer: no runs recorded')


def timer_precision(example, seconds):
    """Lateness (us) of each run of a 100 ms timer over `seconds`, from the example app's log lines."""
    sock_dir = tempfile.mkdtemp(prefix='timerbench-')
    log_path = os.path.join(sock_dir, 'log')
    env = dict(os.environ, EXAMPLE_TIMER_MS='100')
    with open(log_path, 'w') as log:
        p = subprocess.Popen([example, '--processes', '2', '--socket', os.path.join(sock_dir, 's')], stdout=log,
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        time.sleep(seconds)
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=10)
    late = []
    with open(log_path) as f:
        for line in f:
            if 'example timer:' in line and 'late_us ' in line:
                late.append(int(line.split('late_us ')[1].split()[0]))
    shutil.rmtree(sock_dir, ignore_errors=True)
    return late


if __name__ == '__main__':
    main()
