"""Generate images from a trained model: seeded PNGs, a grid, an HTML gallery."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.common.errors import ConfigError
from src.gan import random_state
from src.gan.config import TrainConfig
from src.gan.images import dataset_identity, load_images
from src.gan.model_folder import CHECKPOINT_NAME, CONFIG_NAME, CheckpointError, load_checkpoint
from src.gan.networks.build import build_gan, pick_device
from src.gan.networks.schedule import ema_is_averaged
from src.gan.sampling.render import encode, make_grid, sample, to_pil, to_uint8
from src.params import checks

log = logging.getLogger(__name__)
INTERPOLATION = "interpolation.png"


@dataclass
class GenerationResult:
    count: int
    generator: str
    step: int
    seed: int
    seconds: float
    files: list[str]

    @property
    def images_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def metadata(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "generator": self.generator,
            "step": self.step,
            "seed": self.seed,
            "images_per_second": round(self.images_per_second, 2),
        }


def choose_generator(which: str, step: int) -> str:
    """`auto` takes EMA only once upstream's schedule has really averaged it."""
    checks.require(checks.one_of("generator", checks.GENERATOR_CHOICES)(which))
    if which == "auto":
        return "ema" if ema_is_averaged(step) else "raw"
    return which


def load_generator(
    model_dir: Path, which: str = "auto", device: str = "auto"
) -> tuple[torch.nn.Module, TrainConfig, str, int]:
    """The generator network in eval mode, its config, which one it is, and its step."""
    torch_device = pick_device(device)
    saved = load_checkpoint(model_dir)
    if saved is None:
        raise CheckpointError(f"no {CHECKPOINT_NAME} in {model_dir}: run the train step first")
    config = TrainConfig.from_dict(saved["config"])
    with random_state.preserved():  # weight init draws numbers the checkpoint replaces
        gan = build_gan(config, torch_device)
    gan.load_state_dict(saved["gan"])
    chosen = choose_generator(which, int(saved["step"]))
    network = gan.GE if chosen == "ema" else gan.G
    return network.eval(), config, chosen, int(saved["step"])


def check_real_set(model_dir: Path, real_dir: Path) -> None:
    """Refuses, before anything is generated, real images the model's samples cannot be scored on.

    Images of another size or channel count cannot be compared; another set of the
    same shape can, and is only logged.
    """
    readable = json.loads((model_dir / CONFIG_NAME).read_text())
    config = TrainConfig.from_dict(readable["config"])
    try:
        images = load_images(real_dir, config.channels)
    except ConfigError as error:
        raise ConfigError(f"the real images cannot be read for scoring: {error}") from error
    _, height, width, _ = images.shape
    if (height, width) != (config.image_size, config.image_size):
        raise ConfigError(
            f"the model makes {config.image_size}x{config.image_size} images but the real set "
            f"{real_dir} holds {width}x{height}: score against the set the model was trained on"
        )
    trained_on = readable.get("data")
    if trained_on and dataset_identity(real_dir, images)["sha256"] != trained_on["sha256"]:
        log.warning("scoring against other real images than the model was trained on")


def interpolation_latents(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation between two latent vectors."""
    weights = torch.linspace(0, 1, steps).unsqueeze(1)
    start_n, end_n = start / start.norm(), end / end.norm()
    omega = torch.acos((start_n * end_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    return (
        torch.sin((1 - weights) * omega) * start + torch.sin(weights * omega) * end
    ) / torch.sin(omega)


def generate_images(
    model_dir: Path,
    out_dir: Path,
    *,
    count: int = 16,
    seed: int = 0,
    which: str = "auto",
    batch_size: int = 32,
    interpolation_steps: int = 0,
    device: str = "auto",
) -> GenerationResult:
    """Writes `count` PNGs, `grid.png` and `interpolation.png` (when asked) to `out_dir`.

    The same model, seed and batch_size give byte-identical images (the generator's
    noise layers draw per batch).
    """
    checks.require(checks.positive("num_images")(count))
    checks.require(checks.positive("batch_size")(batch_size))
    if interpolation_steps not in (0, 1) and interpolation_steps < 3:
        raise ConfigError("interpolation_steps must be 0 (off) or at least 3")
    network, config, chosen, step = load_generator(model_dir, which, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    latent_stream = torch.Generator().manual_seed(seed)
    latents = torch.randn(count, config.latent_dim, generator=latent_stream)
    started = time.monotonic()
    arrays = list(to_uint8(sample(network, latents, batch_size, seed)))
    files = []
    for index, array in enumerate(arrays):
        name = f"image_{index:04d}.png"
        (out_dir / name).write_bytes(encode(to_pil(array)))
        files.append(name)
    seconds = time.monotonic() - started  # sampling and writing the images, as upstream's generate
    columns = max(1, int(np.ceil(np.sqrt(count))))
    make_grid(arrays, columns).save(out_dir / "grid.png")
    if interpolation_steps >= 3:
        path = interpolation_latents(latents[0], latents[-1], interpolation_steps)
        strip = make_grid(
            list(to_uint8(sample(network, path, batch_size, seed))), interpolation_steps
        )
        strip.save(out_dir / INTERPOLATION)
        files.append(INTERPOLATION)
    result = GenerationResult(
        count=count, generator=chosen, step=step, seed=seed, seconds=seconds, files=files
    )
    log.info(
        "generated %d images (%s generator, step %d) at %.1f images/s",
        count,
        chosen,
        step,
        result.images_per_second,
    )
    return result
