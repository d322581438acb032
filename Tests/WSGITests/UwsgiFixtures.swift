/// Python apps using the `uwsgi` module and `uwsgidecorators` the way uWSGI's docs and the production
/// articles show them (the snippets are kept as written; the routes around them only report).
enum UwsgiFixtures {
    /// The app: cache, timers, locks, mules, postfork, process info, and errors.
    static let app = #"""
import json, os, time
from urllib.parse import parse_qs

import uwsgi
from uwsgidecorators import timer, mstimer, cron, mulefunc, lock, postfork

MARKERS = os.environ['PROBE_MARKERS']
MASTER_AT_IMPORT = uwsgi.masterpid()

def mark(name, line):
    with open(os.path.join(MARKERS, name), 'a') as f:
        f.write(line + '\n')

# --- the article's snippets ---

@postfork
def reconnect():
    mark('postfork', '%d %d %d' % (os.getpid(), uwsgi.worker_id(), uwsgi.mule_id()))

@timer(1)
def heartbeat(signum):
    mark('timer', '%d %d' % (signum, os.getpid()))

@mstimer(100, target='mule1')
def in_the_mule(signum):
    mark('mule_timer', '%d %d' % (signum, uwsgi.mule_id()))

@cron(0, 3, -1, -1, -1)
def nightly(signum):
    mark('cron', str(signum))

@mulefunc(2)
def index_later(path, size=0):
    mark('mulefunc', '%s %d %d' % (path, size, uwsgi.mule_id()))

def broken(signum):
    mark('broken', str(signum))
    raise KeyError('from a signal handler')

# Registered at import (before the fork), so every worker has the handler; the timer comes later.
uwsgi.register_signal(210, 'worker', broken)

@lock
def add_one_decorated(path):
    bump(path)

def bump(path):
    # A read-modify-write that loses updates unless the lock serialises it.
    n = int(open(path).read() or '0') if os.path.exists(path) else 0
    time.sleep(0.001)
    with open(path, 'w') as f:
        f.write(str(n + 1))

def application(environ, start_response):
    path = environ['PATH_INFO']
    q = {k: v[0] for k, v in parse_qs(environ['QUERY_STRING']).items()}
    status, body = '200 OK', b''
    if path == '/cache/set':
        uwsgi.cache_update(q['k'], q['v'])
    elif path == '/cache/get':
        v = uwsgi.cache_get(q['k'])
        body = b'None' if v is None else v
    elif path == '/cache/ops':
        out = []
        out.append(uwsgi.cache_set('a', b'1'))
        out.append(uwsgi.cache_set('a', b'2'))
        out.append(uwsgi.cache_get('a'))
        out.append(uwsgi.cache_update('a', '3'))
        out.append(uwsgi.cache_get('a'))
        out.append(uwsgi.cache_exists('a'))
        out.append(uwsgi.cache_inc('n', 5))
        out.append(uwsgi.cache_dec('n'))
        out.append(uwsgi.cache_num('n'))
        out.append(sorted(uwsgi.cache_keys()))
        out.append(uwsgi.cache_del('a'))
        out.append(uwsgi.cache_exists('a'))
        out.append(uwsgi.cache_get('a'))
        out.append(uwsgi.cache_clear())
        out.append(uwsgi.cache_keys())
        body = repr(out).encode()
    elif path == '/errors':
        out = []
        for what, f in [
            ('key', lambda: uwsgi.cache_set('k' * 3000, 'v')),
            ('value', lambda: uwsgi.cache_update('k', 'v' * 70000)),
            ('nocache', lambda: uwsgi.cache_get('k', 'nosuch')),
            ('lock', lambda: uwsgi.lock(7)),
            ('unlock', lambda: uwsgi.unlock(0)),
            ('signal', lambda: uwsgi.add_timer(300, 1)),
            ('unregistered', lambda: uwsgi.add_timer(200, 1)),
            ('interval', lambda: uwsgi.add_ms_timer(255, 0)),
            ('cronfield', lambda: uwsgi.add_cron(0, 61, -1, -1, -1, -1)),
            ('target', lambda: uwsgi.register_signal(201, 'nobody', heartbeat)),
            ('mule', lambda: uwsgi.mule_msg('x', 9)),
            ('getmsg', lambda: uwsgi.mule_get_msg()),
            ('type', lambda: uwsgi.cache_get(42)),
        ]:
            try:
                f()
                out.append('%s: no exception' % what)
            except Exception as e:
                out.append('%s: %s %s: %s' % (what, type(e).__name__, ' '.join(c.__name__ for c in type(e).__mro__[1:3]), e))
        body = '\n'.join(out).encode()
    elif path == '/count':
        target = os.path.join(MARKERS, 'counter-' + q['how'])
        for _ in range(int(q['n'])):
            if q['how'] == 'ctx':
                with uwsgi.lock_ctx(0):
                    bump(target)
            else:
                add_one_decorated(target)
    elif path == '/mule':
        for i in range(int(q['n'])):
            uwsgi.mule_msg('message %d' % i, 1)
    elif path == '/mulefunc':
        index_later(q['p'], size=len(q['p']))
    elif path == '/info':
        body = json.dumps({
            'worker_id': uwsgi.worker_id(), 'mule_id': uwsgi.mule_id(), 'numproc': uwsgi.numproc,
            'numproc_called': uwsgi.numproc(), 'masterpid': uwsgi.masterpid(), 'pid': os.getpid(),
            'masterpid_at_import': MASTER_AT_IMPORT,
            'opt': {k: (v.decode() if isinstance(v, bytes) else v) for k, v in uwsgi.opt.items() if not isinstance(v, list)},
            'mules': ['<flag>' if m is True else m.decode() for m in uwsgi.opt.get('mule', [])],
        }).encode()
    elif path == '/procname':
        uwsgi.setprocname(q['t'])
    elif path == '/hold-lock':
        uwsgi.lock(1)
        mark('holder', str(os.getpid()))
        time.sleep(30)
    elif path == '/take-lock':
        with uwsgi.lock_ctx(1):
            body = b'taken'
    elif path == '/reload':
        body = repr(uwsgi.reload()).encode()
    elif path == '/raising-signal':
        uwsgi.add_ms_timer(210, 50)
    elif path == '/sleep':
        time.sleep(float(q['s']))
    start_response(status, [('Content-Type', 'text/plain'), ('X-Worker', str(uwsgi.worker_id()))])
    return [body]
"""#

    /// `--mule=mule_loop.py`: the article's mule loop, as written.
    static let muleLoop = #"""
import os
import uwsgi

while True:
    message = uwsgi.mule_get_msg()
    with open(os.path.join(os.environ['PROBE_MARKERS'], 'mule'), 'a') as f:
        f.write(message.decode() + '\n')
"""#

    /// With --lazy-apps: imported in each worker after the fork.
    static let lazyApp = #"""
import os
import uwsgi
from uwsgidecorators import postfork, timer

MARKERS = os.environ['PROBE_MARKERS']

@postfork
def after_fork():
    with open(os.path.join(MARKERS, 'postfork'), 'a') as f:
        f.write('%d %d\n' % (os.getpid(), uwsgi.worker_id()))

@timer(1)
def once_per_second(signum):
    with open(os.path.join(MARKERS, 'timer'), 'a') as f:
        f.write('%d %d\n' % (signum, os.getpid()))

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'lazy']
"""#
}
