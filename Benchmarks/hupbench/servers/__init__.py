"""One module per peer server: how the benchmarks start it."""
