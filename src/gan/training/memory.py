"""Will the run fit? The memory a training step needs, checked before training starts.

On a GPU, what is known exactly is refused on: the uint8 images each GPU holds,
and the gradients and Adam moments its optimizers will allocate (the weights are
already placed when this runs, so the free memory counts them); activations are
left to the headroom the refusal names. On a CPU the step's activations dominate:
they grow with the discriminator's layer outputs, which a forward on the meta
device counts without computing anything, times a cost per element measured on
this project's machine (python -m bench.memory_model: within about 30% of the
peak RSS at 32 to 512 px). The estimate is checked against what the process may
use: its cgroup's limit, or the machine's available memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from src.common.errors import ConfigError
from src.gan.config import TrainConfig
from src.gan.networks.build import discriminator_activations

log = logging.getLogger(__name__)
GB = 1e9
# Per optimised weight: its gradient and Adam's two moments, like the weight itself.
STATE_PER_WEIGHT = 3
# Bytes of peak memory per element of one discriminator forward, per image of a micro-batch:
# three D passes, their backward and the gradient penalty's double backward, in fp32.
ACTIVATION_BYTES = 48
WARN_SHARE = 0.8
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def optimiser_bytes(gan: torch.nn.Module) -> int:
    """Bytes the first optimizer steps add: gradients and Adam moments of G and D."""
    weights = [*gan.G.parameters(), *gan.D.parameters()]
    return STATE_PER_WEIGHT * sum(p.numel() * p.element_size() for p in weights if p.requires_grad)


def check_device_memory(image_bytes: int, gan: torch.nn.Module, device: torch.device) -> None:
    """Refuses, with the sizes and the fix, a set that leaves no room on the GPU to train."""
    if device.type != "cuda":
        return
    free, total = torch.cuda.mem_get_info(device)
    state = optimiser_bytes(gan)
    if image_bytes + state <= free:
        return
    name = torch.cuda.get_device_name(device)
    raise ConfigError(
        f"the training images take {image_bytes / GB:.2f} GB on the GPU and the optimizer state "
        f"{state / GB:.2f} GB, but {device} ({name}) has {free / GB:.2f} GB free of "
        f"{total / GB:.2f} GB: train on fewer or smaller images (a lower image_size), or ask "
        "for a GPU with more memory (--accelerator NVIDIA_L4, NVIDIA_TESLA_A100, ...)"
    )


def image_step_bytes(config: TrainConfig) -> int:
    """Estimated peak memory of one image of a micro-batch in a training step on a CPU."""
    return discriminator_activations(config) * ACTIVATION_BYTES


def available_host_bytes() -> int:
    """Memory this process may still use: its cgroup's limit if lower than what is available."""
    available = _meminfo("MemAvailable")
    for path in _CGROUP_LIMITS:
        try:
            limit = int(path.read_text().strip())
        except (OSError, ValueError):  # absent, or "max"
            continue
        used = _cgroup_usage(path.parent)
        available = min(available, max(0, limit - used))
    return available


def check_host_memory(
    config: TrainConfig, gan: torch.nn.Module, device: torch.device, processes: int = 1
) -> None:
    """On a CPU: refuses a step that will not fit with the sizes and the fix; warns near the edge.

    `processes` training processes share the machine's memory.
    """
    if device.type != "cpu":
        return
    per_image, state = image_step_bytes(config) * processes, optimiser_bytes(gan) * processes
    needed, available = state + config.batch_size * per_image, available_host_bytes()
    if needed <= WARN_SHARE * available:
        return
    fits = int((available - state) // per_image)
    where = f" in each of {processes} processes" if processes > 1 else ""
    sizes = (
        f"a training step at {config.image_size} px with batch_size={config.batch_size}{where} needs "
        f"about {needed / GB:.1f} GB ({per_image / GB:.2f} GB an image), and this process may "
        f"use {available / GB:.1f} GB"
    )
    if needed <= available:
        log.warning("%s: it may run out of memory", sizes)
        return
    fix = f"lower batch_size to {fits} or less" if fits >= 1 else "lower image_size or fmap_max"
    raise ConfigError(f"{sizes}: {fix}, or train on a GPU")


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/meminfo")


def _cgroup_usage(folder: Path) -> int:
    for name in ("memory.current", "memory.usage_in_bytes"):
        try:
            return int((folder / name).read_text().strip())
        except (OSError, ValueError):
            continue
    return 0
