"""A cleansed image set held once per device, served as shuffled float batches.

Batches follow upstream's loader: a fresh permutation each epoch, the last
partial batch dropped. With several training processes each takes every
`world_size`-th image of the shared permutation, like torch's
DistributedSampler. The sampler has its own generator (src/gan/random_state.py),
so its state saves and restores exactly and it draws nothing from training's
streams. On a CPU the images stay in the memory map every process shares; on a
GPU each process holds one uint8 copy and converts only the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from src.gan import random_state
from src.gan.images import to_float
from src.gan.training.ranks import SINGLE, Ranks


class ImageBank:
    """Serves float batches [B, channels, H, W] in [0, 1] from uint8 images [N, H, W, C]."""

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        channels: int,
        seed: int,
        device: torch.device,
        ranks: Ranks = SINGLE,
    ) -> None:
        host = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
        self.images = host if device.type == "cpu" else host.to(device)
        self.channels, self.device = channels, device
        self.rank, self.world_size = ranks.rank, ranks.world_size
        self.generator = random_state.private_stream(seed, random_state.DATA_ORDER)
        self.order = self._new_epoch()
        self.position = 0

    def __len__(self) -> int:
        return len(self.images)

    def _new_epoch(self) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=self.generator)[
            self.rank :: self.world_size
        ]

    def next_batch(self, batch_size: int) -> torch.Tensor:
        if self.position + batch_size > len(self.order):
            self.start_new_epoch()
        indices = self.order[self.position : self.position + batch_size]
        self.position += batch_size
        return to_float(self.images[indices.to(self.images.device)], self.channels).to(self.device)

    def start_new_epoch(self) -> None:
        self.order = self._new_epoch()
        self.position = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"]
        self.position = int(state["position"])
