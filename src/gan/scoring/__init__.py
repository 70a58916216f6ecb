"""Scores of generated images against real ones: SWD (no weights) and FID (weights supplied)."""
