"""A cleansed image set held in memory once, served as shuffled batches.

Batches follow upstream's loader: a fresh permutation each epoch, the last
partial batch dropped. With several training processes each takes every
`world_size`-th image of the shared permutation, like torch's
DistributedSampler. The sampler has its own generator, so its state saves and
restores exactly and it draws nothing from torch's global stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from src.common.errors import ConfigError
from src.common.image_array import has_array, load_array

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".webp")
_PIL_MODE = {1: "L", 3: "RGB", 4: "RGBA"}


def image_paths(folder: Path, pattern: str = "*") -> list[Path]:
    """Image files below `folder`, in sorted order."""
    return sorted(p for p in folder.rglob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(
    folder: Path, channels: int, image_size: int | None = None, pattern: str = "*"
) -> torch.Tensor:
    """Images of `folder` as one uint8 tensor [N, C, H, W].

    A cleansed set (`images.npy`) is read as it is; otherwise image files below
    `folder`, in sorted order. All must be `image_size` square; None takes the
    first image's size.
    """
    if has_array(folder):
        return _from_array(folder, channels, image_size)
    paths = image_paths(folder, pattern)
    if not paths:
        raise ConfigError(f"no images in {folder}: run the cleanse step first")
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            image_size = image_size or image.size[0]
            if image.size != (image_size, image_size):
                raise ConfigError(
                    f"{path.name} is {image.size[0]}x{image.size[1]}, training expects "
                    f"{image_size}x{image_size}: cleanse with the same image_size as training"
                )
            array = np.asarray(image.convert(_PIL_MODE[channels]))
        arrays.append(array[:, :, None] if array.ndim == 2 else array)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _from_array(folder: Path, channels: int, image_size: int | None) -> torch.Tensor:
    array, _ = load_array(folder)
    _, height, width, stored = array.shape
    if image_size and (height, width) != (image_size, image_size):
        raise ConfigError(
            f"{folder} holds {width}x{height} images, training expects {image_size}x"
            f"{image_size}: cleanse with the same image_size as training"
        )
    if stored != channels and not (channels == 3 and stored in (1, 4)):
        raise ConfigError(
            f"{folder} holds {stored}-channel images, {channels} are expected: cleanse with "
            "the same transparent/greyscale settings as training"
        )
    images = torch.from_numpy(np.array(array)).permute(0, 3, 1, 2)
    if stored == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    return images[:, :channels].contiguous()


class ImageBank:
    """Serves float batches in [0, 1] from an in-memory uint8 tensor."""

    def __init__(
        self,
        images: torch.Tensor,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images = images.to(device)
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
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
        return self.images[indices.to(self.device)].float().div_(255.0)

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
