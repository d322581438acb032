"""WSGI hosting benchmarks: swsgi against uWSGI (python3 plugin), gunicorn (sync), granian (WSGI)
and bjoern, serving the same hello-world file (and a Flask hello), side by side in one run.

    python3 -m wsgibench [direct|nginx|all]      (from Benchmarks/, started by Benchmarks/run wsgi)

One module per server (servers/), one per scenario (scenarios/), one for the report (report.py).
"""
