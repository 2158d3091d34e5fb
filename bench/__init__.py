"""Benchmarks (`make bench`): figures for bench/RESULTS.md; see bench/run.py."""
