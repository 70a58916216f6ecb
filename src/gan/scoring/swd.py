"""Sliced Wasserstein distance between image sets, needing no pretrained weights.

Karras et al., "Progressive Growing of GANs", ICLR 2018, appendix D
(https://arxiv.org/abs/1710.10196): 7x7 patches from each Laplacian pyramid
level, normalised per channel, compared along random 1-D projections.
Lower is closer; the score is the mean over levels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from src.gan.images import load_images, to_float

PATCH = 7


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels, finest first, down to `min_size` pixels (the last is the low-pass)."""
    levels = []
    current = images
    while current.shape[-1] > min_size:
        smaller = F.avg_pool2d(current, 2)
        levels.append(
            current - F.interpolate(smaller, scale_factor=2, mode="bilinear", align_corners=False)
        )
        current = smaller
    levels.append(current)
    return levels


def patch_descriptors(
    level: torch.Tensor, per_image: int, generator: torch.Generator
) -> torch.Tensor:
    """`per_image` random 7x7 patches of each image, flattened as `F.unfold` orders them.

    Only the chosen patches are gathered: unfolding every patch first would take
    49x the level's memory (2.4 GB for 64 images at 256 px) to keep 64 per image.
    """
    count, channels, height, width = level.shape
    columns = width - PATCH + 1
    index = torch.randint(
        0, (height - PATCH + 1) * columns, (count, per_image), generator=generator
    )
    offsets = torch.arange(PATCH)
    rows = (index // columns)[..., None, None] + offsets[:, None]  # [N, P, 7, 1]
    cols = (index % columns)[..., None, None] + offsets[None, :]  # [N, P, 1, 7]
    images = torch.arange(count)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[images, rows, cols]  # [N, P, 7, 7, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(count * per_image, channels * PATCH * PATCH)


def _normalise(descriptors: torch.Tensor, channels: int) -> torch.Tensor:
    grouped = descriptors.reshape(descriptors.shape[0], channels, -1)
    mean = grouped.mean(dim=(0, 2), keepdim=True)
    std = grouped.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((grouped - mean) / std).reshape(descriptors.shape[0], -1)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, directions: int, generator: torch.Generator
) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance between projections."""
    count = min(len(a), len(b))
    projections = torch.randn(a.shape[1], directions, generator=generator)
    projections /= projections.norm(dim=0, keepdim=True)
    pa = torch.sort(a[:count] @ projections, dim=0).values
    pb = torch.sort(b[:count] @ projections, dim=0).values
    return float((pa - pb).abs().mean())


def swd(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    patches_per_image: int = 64,
    directions: int = 256,
    seed: int = 0,
) -> float:
    """SWD between two float image batches [N, C, H, W] in [0, 1] of the same size."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}")
    generator = torch.Generator().manual_seed(seed)
    channels = real.shape[1]
    distances = []
    for real_level, fake_level in zip(
        laplacian_pyramid(real), laplacian_pyramid(fake), strict=True
    ):
        a = _normalise(patch_descriptors(real_level, patches_per_image, generator), channels)
        b = _normalise(patch_descriptors(fake_level, patches_per_image, generator), channels)
        distances.append(sliced_wasserstein(a, b, directions, generator))
    return float(np.mean(distances))


def swd_with_references(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """SWD of `fake` against `real`, beside two references on the same number of images.

    `real_floor`: one half of the real images against the other, the score a
    perfect generator would get at this sample size. `noise`: uniform noise
    against the real images, the score of an untrained one.
    """
    count = min(len(fake), len(real) // 2) if len(real) > 1 else len(real)
    first, second = real[:count], real[count : 2 * count]
    noise = torch.rand(fake[:count].shape, generator=torch.Generator().manual_seed(seed))
    return {
        "swd": swd(real, fake, seed=seed),
        "real_floor": swd(first, second, seed=seed) if len(second) == count else float("nan"),
        "noise": swd(first, noise, seed=seed),
        "images": count,
    }


def load_float_images(
    folder: Path, channels: int, image_size: int | None = None, pattern: str = "*", limit: int = 0
) -> torch.Tensor:
    """At most `limit` (0: all) images of `folder` as floats [N, channels, H, W] in [0, 1]."""
    array = load_images(folder, channels, image_size, pattern)
    return to_float(torch.from_numpy(np.array(array[: limit or None])), channels)


def load_pair(
    real_dir: Path, fake_dir: Path, *, channels: int = 3, limit: int = 512, fake_pattern: str = "*"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and generated images as floats in [0, 1], at most `limit` each, the same size."""
    real = load_float_images(real_dir, channels, limit=limit)
    fake = load_float_images(fake_dir, channels, real.shape[-1], fake_pattern, limit)
    return real, fake
