"""The random streams training draws from: seeded, captured and restored here, nowhere else.

A training process draws from Python's `random` (upstream's augmentation), torch's
CPU stream (latents) and, on a GPU, that device's CUDA stream (augmentation, the
generator's noise). `capture` saves the three for one process and `restore` is its
mirror image, so exact resume reads as one pair of functions. Everything else that
needs randomness (the data order, the fixed progress latents, sampling) takes a
private stream or runs inside `preserved`, so it never shifts training's draws.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import torch

# Streams of their own, apart from training's: an offset from the run's seed each.
DATA_ORDER = 0
PROGRESS_LATENTS = 7_777


def seed_all(seed: int) -> None:
    """Python's and torch's streams (CPU and every CUDA device) from `seed`, as upstream seeds."""
    torch.manual_seed(seed)
    random.seed(seed)


def seed_process(seed: int, rank: int, step: int, attempt: int) -> None:
    """Fresh streams for one training process at `step`: rank 0 of a fresh run keeps `seed`.

    Other ranks draw other latents and augmentations; after a NaN restart the
    restored streams would replay the failing step, so the attempt shifts them.
    """
    if (rank, step, attempt) == (0, 0, 0):
        seed_all(seed)
        return
    seed_all(seed * 1_000_003 + step * 101 + attempt + rank * 7_919)


def private_stream(seed: int, offset: int) -> torch.Generator:
    """A CPU generator of its own: drawing from it leaves training's streams alone."""
    return torch.Generator().manual_seed(seed + offset)


def capture(device: torch.device) -> dict[str, Any]:
    """This process's streams: Python, torch CPU and, on a GPU, its own device's CUDA stream."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _python_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore(state: dict[str, Any], device: torch.device) -> None:
    """Sets the streams `capture` saved (CPU byte tensors, as a checkpoint loads them)."""
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"].tolist()), python["gauss"]))
    cuda = _cuda_state_for(state.get("cuda"), device)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss,
    }


def _cuda_state_for(saved: Any, device: torch.device) -> torch.Tensor | None:
    """This device's saved CUDA state; older checkpoints kept a list over every visible GPU."""
    if device.type != "cuda" or saved is None:
        return None
    if isinstance(saved, (list, tuple)):
        index = device.index if device.index is not None else torch.cuda.current_device()
        return saved[index] if index < len(saved) else None
    return saved


@contextlib.contextmanager
def preserved(device: torch.device | None = None) -> Iterator[None]:
    """Leaves Python's and torch's streams (and `device`'s, on a GPU) as it found them."""
    python = random.getstate()
    devices = [device] if device is not None and device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Draws inside come from `seed`; the streams outside are left untouched."""
    with preserved(device):
        seed_all(seed)
        yield
