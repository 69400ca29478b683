"""Benchmarks: `python -m benchmarks [--quick]` runs them all, each beside its floor."""
