// Filled in with swsgi.
