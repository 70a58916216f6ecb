"""Checkpoints that resume exactly, load safely anywhere, and export to upstream's layout.

Layout of a model folder:
    checkpoint.pt        full training state (weights, optimizers, scalers, step, RNG, config)
    model_config.json    the config and package versions, readable by a person
    upstream/models/<name>/model_<n>.pt and .config.json: what lightweight-gan's own
                         `Trainer.load` and `--generate` read
"""

from __future__ import annotations

import random
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from src.common.atomic_files import atomic_open, write_json_atomically
from src.gan.config import TrainConfig

FORMAT = "lwgan-kfp/1"
CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "model_config.json"
UPSTREAM_DIR = "upstream"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says what differs."""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "lightweight-gan", "kornia", "einops"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def rng_state() -> dict[str, Any]:
    """Every random stream a training step draws from."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _python_state_to_tensor(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tensor_to_python_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss,
    }


def _tensor_to_python_state(state: dict[str, Any]) -> tuple:
    return (state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"])


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
    write_json_atomically(
        model_dir / CONFIG_NAME,
        {
            "format": FORMAT,
            "step": state["step"],
            "config": config.to_dict(),
            "versions": payload["versions"],
        },
    )
    return path


def load_checkpoint(
    model_dir: Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """The saved state, or None when the folder has no checkpoint yet."""
    path = model_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path} cannot be read ({error}): delete it to train from scratch"
        ) from error
    if payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} has format {payload.get('format')!r}, this code reads {FORMAT!r}: "
            "use the project version that wrote it, or train from scratch"
        )
    return payload


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
    number = step // config.save_every
    payload = {
        "GAN": {k: v.detach().cpu() for k, v in gan_state.items()},
        "version": package_versions()["lightweight-gan"],
        "G_scaler": scalers["G"],
        "D_scaler": scalers["D"],
    }
    path = target / f"model_{number}.pt"
    atomic_torch_save(payload, path)
    write_json_atomically(target / ".config.json", config.upstream_config())
    return path
