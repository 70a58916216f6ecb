"""What the generator draws from the same latents at every checkpoint: frames a person can watch.

Frames live in the checkpoint (so a resumed or retried run continues the same
sequence) and as files in the model folder: `progress/step_XXXXXX.png` and an
animated `progress/progress.webp` that plays in the pipeline UIs.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from src.common.atomic_files import atomic_open
from src.gan import random_state
from src.gan.networks.schedule import ema_is_averaged
from src.gan.sampling.render import encode, make_grid, sample, thumbnail, to_uint8

FOLDER = "progress"
ANIMATION = "progress.webp"
GRID_SIDE = 4
CELL_PIXELS = 64
SHOWN_FRAMES = 24


def fixed_latents(seed: int, latent_dim: int) -> torch.Tensor:
    """The same latents for the whole run, and for every resume of it."""
    stream = random_state.private_stream(seed, random_state.PROGRESS_LATENTS)
    return torch.randn(GRID_SIDE * GRID_SIDE, latent_dim, generator=stream)


def render_frame(gan: torch.nn.Module, latents: torch.Tensor, step: int, seed: int) -> bytes:
    """A PNG grid of what the generator makes of `latents` now (cells at most 64 px)."""
    network = gan.GE if ema_is_averaged(step) else gan.G
    was_training = network.training
    network.eval()
    images = sample(network, latents, len(latents), seed)
    network.train(was_training)
    if images.shape[-1] > CELL_PIXELS:
        images = F.interpolate(images, size=CELL_PIXELS, mode="area")
    return encode(make_grid(list(to_uint8(images)), GRID_SIDE), optimize=True)


def shown(frames: list[dict]) -> list[dict]:
    """At most SHOWN_FRAMES, evenly spread, always the first and the last."""
    if len(frames) <= SHOWN_FRAMES:
        return frames
    last = len(frames) - 1
    picks = sorted({round(i * last / (SHOWN_FRAMES - 1)) for i in range(SHOWN_FRAMES)})
    return [frames[i] for i in picks]


def animation(frames: list[dict], width: int = 256) -> bytes:
    """An animated WebP of the shown frames (the last one held longer)."""
    pictures = [Image.open(io.BytesIO(thumbnail(f["png"], width))) for f in shown(frames)]
    durations = [400] * (len(pictures) - 1) + [1600]
    return encode(
        pictures[0], "WEBP", save_all=True, append_images=pictures[1:],
        duration=durations, loop=0, quality=80,
    )  # fmt: skip


def write_frames(model_dir: Path, frames: list[dict]) -> None:
    """Writes the frame files that are missing."""
    folder = model_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        path = folder / f"step_{frame['step']:06d}.png"
        if not path.exists():
            with atomic_open(path) as handle:
                handle.write(frame["png"])


def write_animation(model_dir: Path, frames: list[dict]) -> None:
    with atomic_open(model_dir / FOLDER / ANIMATION) as handle:
        handle.write(animation(frames))
