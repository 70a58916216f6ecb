"""Images from a trained generator: seeded samples, grids, the gallery page."""
