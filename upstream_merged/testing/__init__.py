"""Tiny real-format checkpoints for tests, demos and benchmarks (nothing is downloaded)."""
