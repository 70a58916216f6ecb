"""Writing checkpoints that resume exactly, checking one fits a run, exporting upstream's layout.

The folder's layout and the reader are in src/gan/model_folder.py (the generate
step needs only those).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from src.common.atomic_files import atomic_open, write_json_atomically
from src.gan.config import TrainConfig
from src.gan.model_folder import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    FORMAT,
    UPSTREAM_DIR,
    CheckpointError,
    package_versions,
)


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """`torch.save` through the project's atomic writer: a reader never sees half a file."""
    with atomic_open(path) as handle:
        torch.save(payload, handle)


def save_checkpoint(model_dir: Path, state: dict[str, Any], config: TrainConfig) -> Path:
    """Saves the full state as `checkpoint.pt` and the readable config beside it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "versions": package_versions(),
        **state,
    }
    path = model_dir / CHECKPOINT_NAME
    atomic_torch_save(payload, path)
    readable = {key: payload[key] for key in ("format", "config", "versions")}
    readable.update(step=state["step"], data=state.get("data"))
    write_json_atomically(model_dir / CONFIG_NAME, readable)
    return path


def check_compatible(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuses a checkpoint whose architecture differs, naming each difference."""
    saved_config = TrainConfig.from_dict(saved["config"])
    differences = {
        key: (saved_config.architecture()[key], value)
        for key, value in config.architecture().items()
        if saved_config.architecture()[key] != value
    }
    if differences:
        listing = ", ".join(
            f"{k}: saved {a!r} vs requested {b!r}" for k, (a, b) in differences.items()
        )
        raise CheckpointError(
            f"checkpoint {path} was trained with another architecture ({listing}): "
            "use the same settings to resume, or a new output location to start over"
        )
    saved_major = str(saved.get("versions", {}).get("lightweight-gan", "")).split(".")[:2]
    current_major = package_versions()["lightweight-gan"].split(".")[:2]
    if saved_major != current_major:
        raise CheckpointError(
            f"checkpoint {path} was written with lightweight-gan "
            f"{saved['versions'].get('lightweight-gan')}, this environment has "
            f"{package_versions()['lightweight-gan']}: install the saved version"
        )


def export_upstream(
    model_dir: Path,
    gan_state: dict[str, torch.Tensor],
    config: TrainConfig,
    step: int,
    scalers: dict[str, Any],
) -> Path:
    """Writes `upstream/models/<name>/model_<n>.pt` and `.config.json` as upstream's Trainer does."""
    target = model_dir / UPSTREAM_DIR / "models" / config.name
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("model_*.pt"):
        old.unlink()
    payload = {
        "GAN": {k: v.detach().cpu() for k, v in gan_state.items()},
        "version": package_versions()["lightweight-gan"],
        "G_scaler": scalers["G_scaler"],
        "D_scaler": scalers["D_scaler"],
    }
    path = target / f"model_{step // config.save_every}.pt"
    atomic_torch_save(payload, path)
    write_json_atomically(target / ".config.json", config.upstream_config())
    return path


def check_same_data(saved: dict[str, Any], data: dict[str, Any], source: str) -> None:
    """Refuses to continue a model on other images than it was trained on, naming both sets.

    Checkpoints written before data was recorded carry none and are resumed as they are.
    """
    trained_on = saved.get("data")
    if not trained_on or trained_on["sha256"] == data["sha256"]:
        return
    raise CheckpointError(
        f"checkpoint {source} was trained on other images than this run's: it holds "
        f"{describe_data(trained_on)}, this run has {describe_data(data)}. To train on these "
        "images, use a fresh checkpoint_root (or output folder); to fine-tune the saved model "
        "on them, start from a copy of it in a new folder"
    )


def describe_data(data: dict[str, Any]) -> str:
    """`gs://b/cats/ (96 images of 32x32x3, sha256 1a2b3c4d5e6f)` for messages."""
    count, height, width, channels = data["shape"]
    return (
        f"{data.get('source_uri') or 'a dataset'} ({count} images of {height}x{width}x{channels}, "
        f"sha256 {data['sha256'][:12]})"
    )
