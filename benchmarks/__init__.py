"""Benchmarks: ``python -m benchmarks`` (or ``make bench``) runs them all.

Each one measures the provider against a baseline in the same run and prints the ratio, so the
numbers compare like with like on whatever machine runs them.
"""
