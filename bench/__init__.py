"""Benchmarks: `python -m bench NAME` prints a one-line figure. They measure; tests check."""
