// The swsgi executable: hosts the built-in apps (--app), a shared library (--app-library) or a
// Python WSGI app (--wsgi-file / --module).
import SWSGI
import WSGI

serve(hostLoader: { options, environment in try WSGIHost(options: options, environment: environment) })
