"""The smallest training settings that still exercise every part: tests and benchmarks share them."""

from __future__ import annotations

from src.gan.config import TrainConfig

SMOKE = TrainConfig(
    image_size=32, batch_size=2, steps=2, latent_dim=32, fmap_max=16, save_every=1, log_every=1
)
