"""Helpers that tests and benchmarks share (never shipped in a pipeline step)."""
