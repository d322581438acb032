"""Benchmarks for hupwatch and swsgi's own apps (sections reload, throughput, workers); started by
Benchmarks/run, which installs the tools, builds the release binaries and passes their paths in the
environment. Standard library only.

    python3 -m hupbench reload|throughput|workers|all        (from Benchmarks/)

Every process is started in its own session, this process is a child subreaper (orphans come back
to it), and whatever is left at the end of a row or of the run is stopped and reaped. See README.md.
common.py: settings, processes, probes, nginx, wrk; servers/: how each peer is started; scenarios/:
one module per section; report.py: the tables.
"""
