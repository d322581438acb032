/// Python defined once per process: the wsgi.input and wsgi.file_wrapper classes (thin shells over
/// swsgi's builtins) and the app loaders. Kept in Python where speed does not matter (loading) or
/// where it is one attribute lookup away from Swift (the input methods).
enum SupportSource {
    static let filename = "<swsgi wsgi support>"
    static let text = #"""
import sys, os

class Input:
    """wsgi.input: the request body, read from the socket as the app asks (never held whole)."""
    __slots__ = ('_read', '_readline')

    def __init__(self, read, readline):
        self._read = read
        self._readline = readline

    def read(self, size=-1):
        return self._read(-1 if size is None else size)

    def readline(self, size=-1):
        return self._readline(-1 if size is None else size)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self._readline(-1)
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self._readline(-1)
        if not line:
            raise StopIteration
        return line

class FileWrapper:
    """wsgi.file_wrapper: swsgi sends a real file's bytes with sendfile(2); others are iterated."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

def set_env(entry):
    # --env NAME=VALUE: os.environ's setter also calls putenv(), so the app's own children see it too.
    name, _, value = entry.partition('=')
    os.environ[name] = value

def _callable(module, name, what, hint):
    # uWSGI's `module = pkg:create_app()`: the factory is called once, its result is the app.
    factory = name.endswith('()')
    attr = name[:-2] if factory else name
    if not hasattr(module, attr):
        raise AttributeError(hint)
    app = getattr(module, attr)
    return _check(app() if factory else app, what)

def _check(app, what):
    if not callable(app):
        raise TypeError('%s is %r, not a WSGI callable' % (what, app))
    return app

class ExitAtImport(BaseException):
    """The app tried to end the process while being imported (os._exit, sys.exit): swsgi would otherwise
    exit with the app's status and no word (or, with --lazy-apps, respawn it forever)."""

# Set by swsgi before any load: the builtin that ends the process at import, and the app's description for
# its line (placeholders until then).
def end_import():
    raise SystemError('swsgi: end_import is not installed')
app_description = 'the app'

def load_guarded(load, *args):
    import posix, _thread
    real = posix._exit
    # The guard acts in the loader's own process and thread only: a process the app forks while being
    # imported (multiprocessing ends each child with os._exit(code)) is not swsgi, and in another thread an
    # exception would end that thread alone while the import goes on.
    owner, loader = posix.getpid(), _thread.get_ident()
    importing = [True]
    def _exit(status):
        if importing[0] and posix.getpid() == owner:
            if _thread.get_ident() == loader:
                raise ExitAtImport('the app called os._exit(%r) while being imported' % (status,))
            line = 'swsgi: the app called os._exit(%r) from another thread while being imported (%s): it cannot be served\n' % (
                status, app_description)
            try:
                posix.write(2, line.encode('utf-8', 'replace'))
            finally:
                end_import()
        real(status)
    os._exit = posix._exit = _exit
    try:
        try:
            loaded = load(*args)
        except SystemExit as e:
            if posix.getpid() != owner:
                raise
            raise ExitAtImport('the app raised SystemExit(%r) while being imported' % (e.code,)) from None
    except BaseException as e:
        if posix.getpid() != owner:
            _end_forked(real, e)
        raise
    finally:
        importing[0] = False
        if os._exit is _exit:
            os._exit = real
        if posix._exit is _exit:
            posix._exit = real
    if posix.getpid() != owner:
        _end_forked(real, None)
    return loaded

def _end_forked(real, error):
    """A process the app forked during its import came back out of the import (it returned, or raised,
    sys.exit included): it is not swsgi, so it ends here as Python would end it, exit handlers run and
    streams flushed, and none of swsgi's error reporting or clean-up runs in it."""
    status = 0
    try:
        if isinstance(error, SystemExit):
            if isinstance(error.code, int):
                status = error.code
            elif error.code is not None:
                print(error.code, file=sys.stderr)
                status = 1
        elif error is not None:
            sys.excepthook(type(error), error, error.__traceback__)
            status = 1
        import atexit
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        real(status)

_exit_handlers_ran = False

def run_exit_handlers():
    """A worker's graceful exit: uwsgi.atexit (a callable the app set, as uWSGI calls it), then the atexit
    handlers, once; an exception in either is printed, not raised."""
    global _exit_handlers_ran
    if _exit_handlers_ran:
        return
    _exit_handlers_ran = True
    try:
        u = sys.modules.get('uwsgi')
        hook = getattr(u, 'atexit', None) if u is not None else None
        if callable(hook):
            hook()
    except BaseException:
        sys.excepthook(*sys.exc_info())
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        sys.excepthook(*sys.exc_info())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass

def load_file(path, name, pythonpath_count):
    return load_guarded(_load_file, path, name, pythonpath_count)

def load_module(modname, name):
    return load_guarded(_load_module, modname, name)

def _load_file(path, name, pythonpath_count):
    import importlib.util
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError('--wsgi-file %s: no such file' % path)
    directory = os.path.dirname(path)
    # The file's directory comes right after --pythonpath's, so its neighbours import as they would
    # under `python FILE`, and --pythonpath still wins.
    if directory not in sys.path:
        sys.path.insert(int(pythonpath_count), directory)
    modname = 'uwsgi_file_' + ''.join(c if c.isalnum() else '_' for c in path)
    # Python source whatever its suffix, as uWSGI compiles the file it is given: mod_wsgi's `app.wsgi`
    # has no suffix importlib knows (spec_from_file_location alone gives None for it).
    import importlib.machinery
    loader = importlib.machinery.SourceFileLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    if spec is None:
        raise ImportError('--wsgi-file %s: not a Python source file' % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return _callable(module, name, '%s:%s' % (path, name), '--wsgi-file %s defines no %r (set --callable)' % (path, name))

def _load_module(modname, name):
    import importlib
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    module = importlib.import_module(modname)
    return _callable(module, name, '%s:%s' % (modname, name),
                     'module %r has no %r (use --module %s:CALLABLE or --callable)' % (modname, name, modname))

def import_one(spec):
    """--import / --shared-import: a module by name, or a file (a path with '/' or ending in .py) under
    the name uWSGI gives it (uwsgi_pythonize: '/' as '.', without .py)."""
    return load_guarded(_import_one, spec)

def _import_one(spec):
    import importlib, importlib.util
    if '/' not in spec and not spec.endswith('.py'):
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        return importlib.import_module(spec)
    name = (spec[:-3] if spec.endswith('.py') else spec).replace('/', '.').strip('.')
    if not os.path.isfile(spec):
        raise FileNotFoundError('%s: no such file' % os.path.abspath(spec))
    found = importlib.util.spec_from_file_location(name, spec)
    if found is None:
        raise ImportError('%s: not a Python source file' % spec)
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    found.loader.exec_module(module)
    return module

def load_paste(uri, name, logger):
    return load_guarded(_load_paste, uri, name, logger)

def _load_paste(uri, name, logger):
    # uWSGI's paste loader: logging.config.fileConfig first with --paste-logger, then loadapp(uri[, name]).
    if logger:
        import logging.config
        logging.config.fileConfig(uri[len('config:'):])
    from paste.deploy import loadapp
    if name:
        app = loadapp(uri, name, relative_to=os.getcwd())
    else:
        app = loadapp(uri, relative_to=os.getcwd())
    return _check(app, '--paste %s' % uri)

def mount_dispatcher(apps, manage):
    """uWSGI's mounts (core/protocol.c, core/utils.c uwsgi_get_app_id): `apps` is [(point, app)] in load
    order, point '' for the root. With manage-script-name the longest point that PATH_INFO starts with
    (followed by '/' or the end) moves from PATH_INFO to SCRIPT_NAME. Then SCRIPT_NAME names the app; a
    SCRIPT_NAME naming none gets the root app, and without one a 500, as uWSGI answers."""
    by_point = {}
    for point, app in apps:
        by_point.setdefault(point, app)
    default = by_point.get('')
    prefixes = sorted((p for p in by_point if p), key=len, reverse=True)

    def dispatch(environ, start_response):
        if manage:
            path = environ.get('PATH_INFO', '')
            for p in prefixes:
                if path.startswith(p) and (len(path) == len(p) or path[len(p)] == '/'):
                    environ['SCRIPT_NAME'] = p
                    environ['PATH_INFO'] = path[len(p):]
                    break
        name = environ.get('SCRIPT_NAME', '')
        app = by_point.get(name.rstrip('/'), default)
        if app is None:
            environ['wsgi.errors'].write('--- no python application found for SCRIPT_NAME %r (mounts: %s) ---\n'
                                         % (name, ', '.join(prefixes)))
            start_response('500 Internal Server Error', [('Content-Type', 'text/plain')])
            return [b'Internal Server Error']
        return app(environ, start_response)
    return dispatch

_modules_seen = [-1]

def module_files(ignore):
    """py-autoreload: the source file of every module in sys.modules (uWSGI's scan: .pyc/.pyo name their
    .py), or None when len(sys.modules) has not changed since the last call."""
    modules = sys.modules
    if len(modules) == _modules_seen[0]:
        return None
    _modules_seen[0] = len(modules)
    files = []
    for name, module in list(modules.items()):
        if name in ignore:
            continue
        try:
            path = getattr(module, '__file__', None)
        except Exception:
            continue
        if not isinstance(path, str) or not path:
            continue
        if path.endswith(('.pyc', '.pyo')):
            path = path[:-1]
        files.append(os.path.abspath(path))
    return files

def source_problem(path):
    """py-autoreload: why a changed .py file cannot be loaded as it is (its syntax error), or None."""
    if not path.endswith('.py'):
        return None
    try:
        with open(path, 'rb') as f:
            source = f.read()
        compile(source, path, 'exec', dont_inherit=True)
    except SyntaxError as e:
        return '%s: %s, line %s' % (type(e).__name__, e.msg, e.lineno)
    except (OSError, ValueError):
        return None
    return None

def freeze():
    # Objects loaded before fork stay out of the collector's reach, so the workers' first collections
    # do not touch (and copy) every page the master loaded.
    import gc
    gc.collect()
    if hasattr(gc, 'freeze'):
        gc.freeze()

def guard_master_exit():
    """Installed before the master imports anything of the app's: a thread the app starts there goes on running
    in the master, which supervises the workers and runs no app code. Its os._exit would end the master
    without a word and orphan the workers: in the master it is refused with a line, and ends that thread
    only. While the app is imported, `load_guarded`'s own guard comes first. Workers and the app's own
    processes (other pids) exit as asked."""
    import posix, _thread
    real = posix._exit
    master, main = posix.getpid(), _thread.get_ident()
    def _exit(status):
        if posix.getpid() == master and _thread.get_ident() != main:
            line = ('swsgi: the app called os._exit(%r) in the master process (pid %d), from a thread it started '
                    'there: refused, that thread ends (the master runs no app code)\n' % (status, master))
            posix.write(2, line.encode('utf-8', 'replace'))
            raise SystemExit(status)
        real(status)
    os._exit = posix._exit = _exit

class HarakiriInterrupt(BaseException):
    """Raised in the app by harakiri's graceful signal, after the app's own handler has run: the request
    unwinds (finally blocks, the iterable's close()) before SIGKILL lands."""

# [True] while a request is in hand: a graceful signal arriving between requests interrupts nothing.
in_request = [False]

def install_harakiri(signum):
    import signal
    previous = signal.getsignal(signum)
    def on_harakiri(sig, frame):
        if callable(previous):
            previous(sig, frame)
        if in_request[0]:
            raise HarakiriInterrupt('request stopped by harakiri (signal %d)' % sig)
    signal.signal(signum, on_harakiri)

def install_harakiri_threads(signum, interrupt):
    # A worker with request threads: Python runs handlers in the main thread, which serves no request;
    # interrupt() raises the exception in each request thread past its harakiri deadline.
    import signal
    previous = signal.getsignal(signum)
    def on_harakiri(sig, frame):
        if callable(previous):
            previous(sig, frame)
        # PyThreadState_SetAsyncExc takes a class: one whose instances carry the usual message.
        class Interrupt(HarakiriInterrupt):
            def __init__(self, *args):
                HarakiriInterrupt.__init__(self, 'request stopped by harakiri (signal %d)' % sig)
        Interrupt.__name__ = Interrupt.__qualname__ = 'HarakiriInterrupt'
        interrupt(Interrupt)
    signal.signal(signum, on_harakiri)

def fileno_of(wrapper):
    """The fd and position of a FileWrapper over a real file, or None."""
    f = wrapper.filelike
    try:
        fd = f.fileno()
        pos = f.tell() if hasattr(f, 'tell') else 0
    except Exception:
        return None
    # A file-like of the app's own may answer anything: only ints in range say where a real file is.
    if type(fd) is not int or type(pos) is not int or not 0 <= fd < 2**31 or pos < 0:
        return None
    import stat
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (fd, pos, st.st_size)
"""#
}
