"""The WSGI app the gunicorn and uWSGI examples serve: answers every request with the pid that served it."""
import os


def application(environ, start_response):
    body = ("hello from pid %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
