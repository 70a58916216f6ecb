"""Will the run fit? The GPU copy of the images and the training state, checked before training.

What is known exactly is refused on: the uint8 images each GPU holds, and the
gradients and Adam moments its optimizers will allocate (the weights are already
placed when this runs, so the free memory counts them). Activations depend on
kernels and precision; the refusal leaves them to the headroom it names.
"""

from __future__ import annotations

import torch

from src.common.errors import ConfigError

GB = 1e9
# Per optimised weight: its gradient and Adam's two moments, like the weight itself.
STATE_PER_WEIGHT = 3


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
