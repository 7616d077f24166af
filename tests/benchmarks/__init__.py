"""Benchmarks: measurements that print figures (run with -m benchmark or as scripts)."""
