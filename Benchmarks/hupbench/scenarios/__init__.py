"""One module per section: reload (with the idle cost), throughput, workers."""
