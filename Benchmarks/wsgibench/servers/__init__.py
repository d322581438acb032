"""One module per server. Each exposes NAME, available() (None, or why not) and
start(module, bind, workers) -> common.Proc, where bind is one of
("tcp", port), ("http-unix", path), ("uwsgi-unix", path); module is `hello` or `flask_hello`."""
from . import swsgi, swsgi_b, uwsgi, gunicorn, granian, bjoern, bjoern_shared

ALL = [swsgi, swsgi_b, uwsgi, gunicorn, granian, bjoern, bjoern_shared]


def by_name(names):
    known = {s.NAME: s for s in ALL}
    return [known[n] for n in names if n in known]
