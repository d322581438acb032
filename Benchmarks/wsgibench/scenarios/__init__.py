"""One module per scenario; each run(servers) returns a list of row dicts for report.py."""
