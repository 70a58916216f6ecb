"""A trained model's folder: what it holds, and reading its checkpoint back on any machine.

checkpoint.pt        full training state: weights, optimizers, scalers, step, random
                     streams, config, and the data it was trained on
model_config.json    the config, data and package versions, readable by a person
upstream/models/<name>/model_<n>.pt and .config.json: what lightweight-gan's own
                     `Trainer.load` and `--generate` read
progress/, tensorboard/   what a person watches (src/gan/watching)
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import torch

FORMAT = "lwgan-kfp/1"
CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "model_config.json"
UPSTREAM_DIR = "upstream"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says what differs and what to do."""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "lightweight-gan", "kornia", "einops"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def load_checkpoint(model_dir: Path) -> dict[str, Any] | None:
    """The saved state with every tensor on the CPU, or None when there is no checkpoint yet.

    Modules and optimizers move their tensors to their parameters' device in
    `load_state_dict`; random states must stay CPU byte tensors.
    """
    path = model_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
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
