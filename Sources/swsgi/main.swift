// swsgi entry point: filled in with swsgi.
