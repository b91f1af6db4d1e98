"""Ratio benchmarks (DESIGN §5). Run as modules, e.g. ``python -m benchmarks.rnn --quick``."""
