/// The Python half of the `uwsgi` and `uwsgidecorators` modules apps import under swsgi (issue 13).
/// Argument handling (keywords, defaults, str or bytes) lives here in Python; each function ends in one
/// call of a `_native` builtin (UwsgiModule.swift) with positional arguments of fixed types, which does
/// the work through the services' Swift API. Both modules exist only in swsgi's interpreter
/// (`sys.modules`), so `import uwsgi` fails outside swsgi as it does outside uWSGI.
enum UwsgiModuleSource {
    /// Run once with `native` (a dict of the builtins) in its namespace: puts both modules into
    /// `sys.modules` and returns `uwsgi`.
    static let bootstrap = #"""
import sys, types

def install(native, uwsgi_source, decorators_source):
    m = types.ModuleType('uwsgi', 'swsgi: the uWSGI API (cache, signals and timers, locks, mules)')
    m.__dict__['_native'] = native
    sys.modules['uwsgi'] = m
    exec(compile(uwsgi_source, '<swsgi uwsgi module>', 'exec'), m.__dict__)
    d = types.ModuleType('uwsgidecorators', 'swsgi: the common uwsgidecorators')
    sys.modules['uwsgidecorators'] = d
    exec(compile(decorators_source, '<swsgi uwsgidecorators module>', 'exec'), d.__dict__)
    return m
"""#

    static let uwsgi = #"""
import contextlib as _contextlib

SPOOL_OK = -2
SPOOL_RETRY = -1
SPOOL_IGNORE = 0
version = b'2.0.99-swsgi'
hostname = b''
magic_table = {}

class CacheError(ValueError):
    """A key or value that does not fit the cache, a full cache, a counter that is not one: swsgi refuses
    loudly where uWSGI fails the insert silently."""

class ServicesError(RuntimeError):
    """A service used wrongly (no such cache, lock, mule or signal; an unknown target)."""

def _bytes(x, what):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode('utf-8')
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError('%s must be bytes or str, not %s' % (what, type(x).__name__))

def _cache(name):
    if name is None:
        return None
    if isinstance(name, bytes):
        name = name.decode('utf-8')
    if not isinstance(name, str):
        raise TypeError('cache name must be str, not %s' % type(name).__name__)
    # uWSGI's name@server addresses a remote cache: swsgi's caches are local.
    if '@' in name:
        raise ServicesError('cache %r: remote caches (name@server) are not supported by swsgi' % name)
    return name or None

def _int(x, what):
    if isinstance(x, bool) or not isinstance(x, int):
        try:
            return int(x)
        except (TypeError, ValueError):
            raise TypeError('%s must be an int, not %s' % (what, type(x).__name__)) from None
    return x

# --- cache (--cache2) ---------------------------------------------------------------------------------

# The hot ones are builtins with uWSGI's positional signatures (key and value: bytes or str):
# cache_get(key[, cache]) -> bytes or None; cache_set(key, value[, expires, cache]) -> True, or None when a
# live entry exists; cache_update(key, value[, expires, cache]) -> True; cache_del / cache_exists(key[, cache])
# -> True or None; cache_inc / cache_dec(key[, amount, expires, cache]) -> the new value. A key or value
# that cannot fit raises CacheError.
cache_get = _native['cache_get']
cache_set = _native['cache_set']
cache_update = _native['cache_update']
cache_del = _native['cache_del']
cache_exists = cache_exist = _native['cache_exists']
cache_inc = _native['cache_inc']
cache_dec = _native['cache_dec']

def cache_clear(cache=None):
    _native['cache_clear'](_cache(cache))
    return True

def cache_inc(key, amount=1, expires=0, cache=None):
    """Atomically adds amount to the 64-bit counter at key (created at 0); returns the new value."""
    return _native['cache_inc'](_bytes(key, 'key'), _int(amount, 'amount'), _cache(cache))

def cache_dec(key, amount=1, expires=0, cache=None):
    return _native['cache_inc'](_bytes(key, 'key'), -_int(amount, 'amount'), _cache(cache))

def cache_num(key, cache=None):
    """The 64-bit counter at key (what cache_inc/cache_dec keep), 0 when absent."""
    v = cache_get(key, cache)
    if v is None:
        return 0
    if len(v) != 8:
        raise CacheError('value of %r is not an 8-byte counter' % (key,))
    return int.from_bytes(v, 'little', signed=True)

def cache_keys(cache=None):
    return list(_native['cache_keys'](_cache(cache)))

# --- signals, timers, cron ------------------------------------------------------------------------------

def register_signal(num, who, handler, unique=False):
    """Runs handler(num) in `who`: '' or 'worker' (the first free worker), 'workerN', 'workers', 'mule',
    'muleN', 'mules'. unique: a run never starts while the previous one still runs (swsgi)."""
    if not callable(handler):
        raise TypeError('register_signal: the handler must be callable')
    if isinstance(who, bytes):
        who = who.decode('ascii')
    _native['register_signal'](_int(num, 'signal'), who or '', handler, bool(unique))
    return True

def signal_registered(num):
    return True if _native['signal_registered'](_int(num, 'signal')) else None

def add_timer(num, seconds):
    _native['add_timer'](_int(num, 'signal'), _int(seconds, 'seconds'), 1000)
    return True

def add_ms_timer(num, milliseconds):
    _native['add_timer'](_int(num, 'signal'), _int(milliseconds, 'milliseconds'), 1)
    return True

add_rb_timer = add_timer

def add_cron(num, minute, hour, day, month, weekday):
    _native['add_cron'](_int(num, 'signal'), _int(minute, 'minute'), _int(hour, 'hour'), _int(day, 'day'),
                        _int(month, 'month'), _int(weekday, 'weekday'))
    return True

# --- locks ----------------------------------------------------------------------------------------------

def lock(num=0):
    """Blocks until this process holds lock num (0, or 1...N with --locks N). Freed if its holder dies."""
    _native['lock'](_int(num, 'lock'))

def unlock(num=0):
    _native['unlock'](_int(num, 'lock'))

@_contextlib.contextmanager
def lock_ctx(num=0):
    """with uwsgi.lock_ctx(n): ... holds lock n for the block, released however it ends."""
    lock(num)
    try:
        yield
    finally:
        unlock(num)

# --- mules ----------------------------------------------------------------------------------------------

def mule_msg(message, mule=0):
    """Queues message for mule `mule` (0: the first free one). Raises when it cannot be delivered."""
    _native['mule_msg'](_bytes(message, 'message'), _int(mule, 'mule'))
    return True

def mule_get_msg(signals=True, farms=True, buffer_size=65536, timeout=-1):
    """In a mule: the next message (bytes), running signals that arrive first; None after timeout seconds."""
    t = -1 if timeout is None or timeout < 0 else int(timeout * 1000)
    return _native['mule_get_msg'](t)

def mule_id():
    return _native['mule_id']()

def in_farm(name=None):
    return None

# Set by the app (uwsgidecorators does): what the default --mule runs for each message.
mule_msg_hook = None

# --- the process ----------------------------------------------------------------------------------------

def worker_id():
    return _native['worker_id']()

def masterpid():
    return _native['masterpid']()

class _NumProc(int):
    """uwsgi.numproc is an int (--processes); calling it works too."""
    def __call__(self):
        return int(self)

numproc = _NumProc(_native['numproc']())

def setprocname(name):
    if isinstance(name, bytes):
        name = name.decode('utf-8', 'surrogateescape')
    _native['setprocname'](str(name))

def reload():
    """A graceful reload of the workers (SIGHUP to the master)."""
    _native['reload']()
    return True

def _options():
    opt = {}
    for name, value in _native['opt']():
        value = True if value is None else value.encode('utf-8')
        if name in opt:
            if not isinstance(opt[name], list):
                opt[name] = [opt[name]]
            opt[name].append(value)
        else:
            opt[name] = value
    return opt

opt = _options()

# Set by the app (uwsgidecorators does): run in each worker and mule after the fork.
post_fork_hook = None

def _run_post_fork_hook():
    hook = post_fork_hook
    if hook is not None:
        hook()

_native['add_postfork'](_run_post_fork_hook)

def _mule_message(message):
    hook = mule_msg_hook
    if hook is None:
        import sys
        sys.stderr.write('swsgi mule %d: a message of %d bytes and no uwsgi.mule_msg_hook\n' % (mule_id(), len(message)))
        return
    hook(message)
"""#

    static let decorators = #"""
import pickle as _pickle
import threading as _threading
import uwsgi

def get_free_signal():
    for signum in range(0, 256):
        if not uwsgi.signal_registered(signum):
            return signum
    raise uwsgi.ServicesError('all 256 signals are registered')

class signal(object):
    def __init__(self, num, **kwargs):
        self.num = num
        self.target = kwargs.get('target', '')

    def __call__(self, f):
        uwsgi.register_signal(self.num, self.target, f)
        return f

class timer(object):
    """@timer(secs, target='', signum=None): f(signum) every secs seconds."""
    def __init__(self, secs, **kwargs):
        self.num = kwargs.get('signum', None)
        self.secs = secs
        self.target = kwargs.get('target', '')

    def __call__(self, f):
        num = get_free_signal() if self.num is None else self.num
        uwsgi.register_signal(num, self.target, f)
        uwsgi.add_timer(num, self.secs)
        return f

rbtimer = timer

class mstimer(object):
    """@mstimer(msecs, target='', signum=None): f(signum) every msecs milliseconds."""
    def __init__(self, msecs, **kwargs):
        self.num = kwargs.get('signum', None)
        self.msecs = msecs
        self.target = kwargs.get('target', '')

    def __call__(self, f):
        num = get_free_signal() if self.num is None else self.num
        uwsgi.register_signal(num, self.target, f)
        uwsgi.add_ms_timer(num, self.msecs)
        return f

class cron(object):
    """@cron(minute, hour, day, month, dayweek, target=''): -1 = any, -N = every N."""
    def __init__(self, minute, hour, day, month, dayweek, **kwargs):
        self.num = kwargs.get('signum', None)
        self.fields = (minute, hour, day, month, dayweek)
        self.target = kwargs.get('target', '')

    def __call__(self, f):
        num = get_free_signal() if self.num is None else self.num
        uwsgi.register_signal(num, self.target, f)
        uwsgi.add_cron(num, *self.fields)
        return f

_postfork_chain = []

def _postfork_chain_hook():
    for f in _postfork_chain:
        f()

def postfork(f):
    """Runs f() in each worker and mule right after its fork. Registered after the fork (an app imported
    in each worker, --lazy-apps), it runs at once."""
    if uwsgi.worker_id() > 0 or uwsgi.mule_id() > 0:
        f()
        return f
    if uwsgi.post_fork_hook is not _postfork_chain_hook:
        if uwsgi.post_fork_hook is not None:
            _postfork_chain.append(uwsgi.post_fork_hook)
        uwsgi.post_fork_hook = _postfork_chain_hook
    _postfork_chain.append(f)
    return f

def lock(f):
    """Runs f holding lock 0."""
    def _lock(*args, **kwargs):
        with uwsgi.lock_ctx(0):
            return f(*args, **kwargs)
    _lock.__name__ = getattr(f, '__name__', '_lock')
    _lock.__doc__ = getattr(f, '__doc__', None)
    return _lock

class thread(object):
    """Runs f in a daemon thread each time it is called."""
    def __init__(self, f):
        self.f = f

    def __call__(self, *args, **kwargs):
        t = _threading.Thread(target=self.f, args=args, kwargs=kwargs)
        t.daemon = True
        t.start()
        return self.f

_mule_functions = {}

def _mule_msg_dispatcher(message):
    msg = _pickle.loads(message)
    if isinstance(msg, dict) and msg.get('service') == 'uwsgi_mulefunc':
        return _mule_functions[msg['func']](*msg['args'], **msg['kwargs'])

uwsgi.mule_msg_hook = _mule_msg_dispatcher

class mulefunc(object):
    """@mulefunc or @mulefunc(N): calling f in a worker runs it in a mule (the first free one, or mule N),
    its arguments pickled."""
    def __init__(self, f):
        if callable(f):
            self.fname = f.__name__
            self.mule = 0
            _mule_functions[f.__name__] = f
        else:
            self.mule = f
            self.fname = None

    def real_call(self, *args, **kwargs):
        uwsgi.mule_msg(_pickle.dumps({'service': 'uwsgi_mulefunc', 'func': self.fname, 'args': args, 'kwargs': kwargs}), self.mule)

    def __call__(self, *args, **kwargs):
        if not self.fname:
            self.fname = args[0].__name__
            _mule_functions[self.fname] = args[0]
            return self.real_call
        return self.real_call(*args, **kwargs)

class _unsupported(object):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError('uwsgidecorators.%s: not supported by swsgi' % type(self).__name__)

class spool(_unsupported): pass
class spoolforever(_unsupported): pass
class spoolraw(_unsupported): pass
class filemon(_unsupported): pass
class harakiri(_unsupported): pass
class muleloop(_unsupported): pass
"""#
}
