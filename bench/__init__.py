"""Benchmarks: each runs the field's reference in the same process and prints ratios (median of several runs)."""
