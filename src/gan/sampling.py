"""Generate images from a trained model: seeded PNGs, a grid, an HTML gallery."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from src.common.errors import ConfigError
from src.gan.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from src.gan.config import TrainConfig
from src.gan.model import build_gan, pick_device
from src.gan.schedule import EMA_AVERAGING_STARTS
from src.params import checks

log = logging.getLogger(__name__)


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
        return "ema" if step > EMA_AVERAGING_STARTS else "raw"
    return which


def load_generator(
    model_dir: Path, which: str = "auto", device: str = "auto"
) -> tuple[torch.nn.Module, TrainConfig, str, int]:
    """The generator network in eval mode, its config, which one it is, and its step."""
    torch_device = pick_device(device)
    saved = load_checkpoint(model_dir, map_location=torch_device)
    if saved is None:
        raise CheckpointError(f"no {CHECKPOINT_NAME} in {model_dir}: run the train step first")
    config = TrainConfig.from_dict(saved["config"])
    with torch.random.fork_rng(devices=[]):  # weight init draws numbers the checkpoint replaces
        gan = build_gan(config, torch_device)
    gan.load_state_dict(saved["gan"])
    chosen = choose_generator(which, int(saved["step"]))
    network = gan.GE if chosen == "ema" else gan.G
    return network.eval(), config, chosen, int(saved["step"])


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


@torch.no_grad()
def sample(
    network: torch.nn.Module, latents: torch.Tensor, batch_size: int, seed: int
) -> torch.Tensor:
    """Runs the generator in batches; its noise layers draw from a seeded, private stream."""
    device = next(network.parameters()).device
    outputs = []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for chunk in latents.split(batch_size):
            outputs.append(network(chunk.to(device)).float().cpu())
    return torch.cat(outputs)


def interpolation_latents(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation between two latent vectors."""
    weights = torch.linspace(0, 1, steps).unsqueeze(1)
    start_n, end_n = start / start.norm(), end / end.norm()
    omega = torch.acos((start_n * end_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    return (
        torch.sin((1 - weights) * omega) * start + torch.sin(weights * omega) * end
    ) / torch.sin(omega)


def gallery_html(title: str, images: list[tuple[str, bytes]], meta: dict[str, Any]) -> str:
    """A self-contained page (images inlined) that renders in the KFP and Vertex UIs."""
    items = "\n".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode()}" '
        f'alt="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, data in images
    )
    details = html.escape(json.dumps(meta, sort_keys=True))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:16px}figure{display:inline-block;margin:4px;text-align:center}"
        "img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}"
        "figcaption{font-size:10px;color:#555}img.wide{width:auto;height:96px}"
        f"</style></head><body><h2>{html.escape(title)}</h2><p><code>{details}</code></p>{items}</body></html>"
    )


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


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
) -> tuple[GenerationResult, str]:
    """Writes `count` PNGs and `grid.png` to `out_dir`; returns the result and gallery HTML.

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
    files, gallery = [], []
    for index, array in enumerate(arrays):
        name = f"image_{index:04d}.png"
        data = _png_bytes(to_pil(array))
        (out_dir / name).write_bytes(data)
        files.append(name)
        gallery.append((name, data))
    seconds = time.monotonic() - started  # sampling and writing the images, as upstream's generate
    columns = max(1, int(np.ceil(np.sqrt(count))))
    grid = make_grid(arrays, columns)
    grid.save(out_dir / "grid.png")
    if interpolation_steps >= 3:
        path = interpolation_latents(latents[0], latents[-1], interpolation_steps)
        strip = make_grid(
            list(to_uint8(sample(network, path, batch_size, seed))), interpolation_steps
        )
        strip.save(out_dir / "interpolation.png")
        files.append("interpolation.png")
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
    page = gallery_html(
        f"Lightweight GAN samples, step {step}",
        [("grid.png", _png_bytes(grid)), *gallery],
        result.metadata(),
    )
    return result, page
