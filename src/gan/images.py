"""Training images as one uint8 array [N, H, W, C], and the float batches the networks take.

A cleansed set (`images.npy`) is memory-mapped, not read: every training process
that maps it shares one copy in the page cache, and a GPU copy streams from it.
A folder of image files (tests, benchmarks) is decoded instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from src.common.errors import ConfigError
from src.common.image_array import INDEX_NAME, has_array, load_array

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".webp")
_PIL_MODE = {1: "L", 3: "RGB", 4: "RGBA"}


def image_paths(folder: Path, pattern: str = "*") -> list[Path]:
    """Image files below `folder`, in sorted order."""
    return sorted(p for p in folder.rglob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)


def load_images(
    folder: Path, channels: int, image_size: int | None = None, pattern: str = "*"
) -> np.ndarray:
    """The images of `folder`, uint8 [N, H, W, C], all `image_size` square (None: the first's).

    A cleansed set keeps its stored channels (1 or 4 serve a 3-channel model, see
    `to_float`); image files are converted to `channels`.
    """
    if has_array(folder):
        return _mapped(folder, channels, image_size)
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
    return np.stack(arrays)


def _mapped(folder: Path, channels: int, image_size: int | None) -> np.ndarray:
    array, _ = load_array(folder, mmap_mode="c")
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
    return array


def to_float(batch: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, H, W, C] -> float [N, channels, H, W] in [0, 1] (grey widened, alpha dropped)."""
    images = batch.permute(0, 3, 1, 2)
    if images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    return images[:, :channels].contiguous().float().div_(255.0)


def dataset_identity(folder: Path, images: np.ndarray) -> dict[str, Any]:
    """What a checkpoint records of its training images: their digest, source and shape.

    The cleanse step records the digest and the download's source in index.json; a
    folder of image files (or a set cleansed before digests) is hashed here.
    """
    index = json.loads((folder / INDEX_NAME).read_text()) if has_array(folder) else {}
    digest = index.get("sha256") or hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()
    return {
        "sha256": digest,
        "shape": list(images.shape),
        "source_uri": index.get("source_uri", ""),
        "source_sha256": index.get("source_sha256", ""),
    }
