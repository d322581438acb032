// The Python apps the WSGI tests serve, written into each test's temp dir.

enum Fixtures {
    /// A plain WSGI app with one route per behaviour the tests check, hostile ones included.
    static let probe = #"""
import json, os, signal, sys, time

MARKERS = os.environ.get('PROBE_MARKERS', '/tmp')
leak = []

def marker(name, text='x'):
    with open(os.path.join(MARKERS, name), 'a') as f:
        f.write(text + '\n')

def on_graceful(signum, frame):
    # harakiri's graceful signal: runs in the worker, in Python, before SIGKILL.
    marker('graceful', '%d %d' % (signum, os.getpid()))
    sys.stderr.write('graceful handler ran in %d\n' % os.getpid())

signal.signal(signal.SIGSYS, on_graceful)
marker('imported', str(os.getpid()))
if os.environ.get('PROBE_FAIL_IMPORT'):
    raise ImportError('the probe refuses to import (PROBE_FAIL_IMPORT)')

class Closing:
    """An iterable whose close() leaves a marker (PEP 3333: close() on every path)."""
    def __init__(self, name, chunks, delay=0, fail_at=None):
        self.name, self.chunks, self.delay, self.fail_at = name, chunks, delay, fail_at
    def __iter__(self):
        for i, c in enumerate(self.chunks):
            if self.fail_at == i:
                raise ValueError('generator failed midway')
            if self.delay:
                time.sleep(self.delay)
            yield c
    def close(self):
        marker('closed-' + self.name)

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path.startswith('/environ'):
        body = {k: v for k, v in environ.items() if isinstance(v, str)}
        body['wsgi.version'] = list(environ['wsgi.version'])
        for k in ('wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once', 'wsgi.input_terminated'):
            body[k] = environ[k]
        body['input_methods'] = [m for m in ('read', 'readline', 'readlines', '__iter__') if hasattr(environ['wsgi.input'], m)]
        data = json.dumps(body).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(data)))])
        return [data]
    if path == '/upload':
        # Streams the body in 64 KiB reads, reporting the total and the peak RSS seen meanwhile.
        total = 0
        inp = environ['wsgi.input']
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            total += len(chunk)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'%d' % total]
    if path == '/lines':
        inp = environ['wsgi.input']
        first = inp.readline()
        limited = inp.readline(3)
        rest = inp.readlines()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps([first.decode(), limited.decode(), [l.decode() for l in rest]]).encode()]
    if path == '/iterate':
        lines = [l.decode() for l in environ['wsgi.input']]
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps(lines).encode()]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing('stream', [b'chunk%d\n' % i for i in range(5)])
    if path == '/slow-stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing('slow', [b'x' * 65536 for i in range(200)], delay=0.02)
    if path == '/harakiri-stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing('harakiri', [b'tick\n'] * 100, delay=0.5)
    if path == '/gen-raise':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing('gen-raise', [b'one\n', b'two\n', b'three\n'], fail_at=1)
    if path == '/raise':
        raise RuntimeError('the app failed on purpose')
    if path == '/raise-in-start-response':
        start_response('not a status', [('Content-Type', 'text/plain')])
        return [b'unreachable']
    if path == '/bad-headers':
        start_response('200 OK', {'Content-Type': 'text/plain'})
        return [b'unreachable']
    if path == '/non-bytes':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing('non-bytes', ['a str, not bytes'])
    if path == '/no-start-response':
        return Closing('no-start', [b'body without a status'])
    if path == '/not-iterable':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return 42
    if path == '/exc-info':
        try:
            raise KeyError('first attempt')
        except KeyError:
            start_response('200 OK', [('Content-Type', 'text/plain')])
            start_response('503 Service Unavailable', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'replaced\n']
    if path == '/crlf':
        start_response('200 OK', [('X-Bad', 'a\r\nSet-Cookie: injected=1')])
        return [b'unreachable']
    if path == '/unicode-header':
        start_response('200 OK', [('X-Name', '\u2603 snowman')])
        return [b'unreachable']
    if path == '/twice':
        start_response('200 OK', [])
        start_response('200 OK', [])
        return [b'unreachable']
    if path == '/one-argument':
        start_response('200 OK')
        return [b'unreachable']
    if path == '/four-arguments':
        start_response('200 OK', [], None, 'extra')
        return [b'unreachable']
    if path == '/keyword-arguments':
        start_response(status='200 OK', headers=[])
        return [b'unreachable']
    if path == '/exc-info-none':
        start_response('200 OK', [('Content-Type', 'text/plain')], None)
        return [b'three arguments\n']
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written ')
        return [b'returned\n']
    if path == '/file':
        f = open(os.environ['PROBE_FILE'], 'rb')
        f.seek(int(environ.get('QUERY_STRING') or 0))
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](f, 8192)
    if path == '/short-length':
        start_response('200 OK', [('Content-Length', '100')])
        return [b'only ten b']
    if path == '/head':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'' if environ['REQUEST_METHOD'] == 'HEAD' else b'hello']
    if path == '/print':
        print('app stdout line')
        sys.stderr.write('app stderr line\n')
        environ['wsgi.errors'].write('wsgi.errors line\n')
        start_response('200 OK', [])
        return [b'ok']
    if path == '/exit':
        sys.exit(3)
    if path == '/sleep':
        time.sleep(30)
        start_response('200 OK', [])
        return [b'woke']
    if path == '/busy':
        end = time.time() + 30
        while time.time() < end:
            pass
        start_response('200 OK', [])
        return [b'done']
    if path == '/leak':
        leak.append(b'x' * (1 << 20))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'%d %d' % (os.getpid(), len(leak))]
    if path == '/sys':
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps({'prefix': sys.prefix, 'path': sys.path, 'executable': sys.executable,
                            'version': sys.version}).encode()]
    if path == '/pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    if path == '/thread':
        import threading
        done = threading.Event()
        threading.Thread(target=done.set).start()
        ok = done.wait(5)
        start_response('200 OK', [])
        return [b'thread ran' if ok else b'thread starved']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello ' + path.encode('latin-1') + b'\n']
"""#

    /// Wraps an app in wsgiref.validate.validator; any WSGIWarning or AssertionError goes to the log.
    static func validated(module: String) -> String {
        #"""
import sys, warnings
from wsgiref.validate import validator, WSGIWarning
warnings.simplefilter('always', WSGIWarning)
def _show(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write('VALIDATOR %s: %s\n' % (category.__name__, message))
warnings.showwarning = _show
import \#(module) as _inner

def _length_delimited(environ, start_response):
    # wsgiref.validate holds apps to PEP 3333's original input.read(size); werkzeug reads a terminated
    # input with read() and no size, which the validator blames on the app. Without the flag it
    # reads CONTENT_LENGTH bytes by size, so the validator judges the server, not werkzeug.
    environ.pop('wsgi.input_terminated', None)
    return _inner.application(environ, start_response)

application = validator(_length_delimited)
"""#
    }

    static let flask = #"""
import os
from flask import Flask, request, jsonify, Response, send_file, stream_with_context

app = Flask(__name__)
application = app

@app.route('/')
def index():
    return 'flask index'

@app.route('/hello/<name>')
def hello(name):
    return 'hello %s' % name

@app.route('/form', methods=['POST'])
def form():
    return 'name=%s age=%s' % (request.form['name'], request.form['age'])

@app.route('/json', methods=['POST'])
def json_echo():
    data = request.get_json()
    return jsonify(received=data, doubled=data['n'] * 2)

@app.route('/stream')
def stream():
    def gen():
        for i in range(3):
            yield 'line %d\n' % i
    return Response(stream_with_context(gen()), mimetype='text/plain')

@app.route('/file')
def file():
    return send_file(os.environ['PROBE_FILE'], mimetype='application/octet-stream')

@app.route('/boom')
def boom():
    raise RuntimeError('flask route failed on purpose')
"""#

    static let djangoApp = #"""
import json, os
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY='swsgi-test-only',
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=['*'],
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    LOGGING_CONFIG=None,
)

import django
django.setup()

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse, FileResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

def index(request):
    return HttpResponse('django index')

def hello(request, name):
    return HttpResponse('hello %s' % name)

@csrf_exempt
def form(request):
    return HttpResponse('name=%s age=%s' % (request.POST['name'], request.POST['age']))

@csrf_exempt
def json_echo(request):
    data = json.loads(request.body)
    return JsonResponse({'received': data, 'doubled': data['n'] * 2})

def stream(request):
    return StreamingHttpResponse(('line %d\n' % i for i in range(3)), content_type='text/plain')

def file(request):
    return FileResponse(open(os.environ['PROBE_FILE'], 'rb'), content_type='application/octet-stream')

def boom(request):
    raise RuntimeError('django view failed on purpose')

urlpatterns = [
    path('', index),
    path('hello/<str:name>', hello),
    path('form', form),
    path('json', json_echo),
    path('stream', stream),
    path('file', file),
    path('boom', boom),
]

from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""#
}
