"""Generator outputs as pictures: batched sampling, uint8 arrays, grids, encoded bytes."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from src.gan import random_state


@torch.no_grad()
def sample(
    network: torch.nn.Module, latents: torch.Tensor, batch_size: int, seed: int
) -> torch.Tensor:
    """Runs the generator in batches; its noise layers draw from `seed`, training's streams stay."""
    device = next(network.parameters()).device
    outputs = []
    with random_state.seeded(seed, device):
        for chunk in latents.split(batch_size):
            outputs.append(network(chunk.to(device)).float().cpu())
    return torch.cat(outputs)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> [N, H, W, C] uint8, rounded as torchvision's save_image does."""
    array = images.clamp(0, 1).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def make_grid(arrays: list[np.ndarray], columns: int, padding: int = 2) -> Image.Image:
    """Tiles equal-size images into one picture."""
    height, width, channels = arrays[0].shape
    rows = (len(arrays) + columns - 1) // columns
    canvas = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        np.uint8,
    )
    for index, array in enumerate(arrays):
        row, col = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        canvas[top : top + height, left : left + width] = array
    return to_pil(canvas)


def encode(image: Image.Image, kind: str = "PNG", **options) -> bytes:
    """The picture as file bytes (PNG, WEBP, ...)."""
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def thumbnail(data: bytes, width: int, quality: int = 80) -> bytes:
    """A lossy WebP of an encoded picture, at most `width` pixels wide: small enough to inline."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        return encode(image, "WEBP", quality=quality)
