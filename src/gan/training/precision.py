"""Numeric precision of a training run, in one place: the autocast dtype and the gradient scalers.

`amp='auto'` takes bf16 where the GPU computes it natively (compute capability 8.0
and up: A100, L4, H100) and fp16 with gradient scaling below that (T4, V100);
`torch.cuda.is_bf16_supported()` is not asked, since it counts emulation. On a
CPU, 'auto' is full precision and 'bf16'/'fp16' run CPU autocast (fp16 with a
CPU gradient scaler), which is how the tests reach the mixed-precision step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)
NATIVE_BF16_CAPABILITY = (8, 0)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class AmpChoice:
    """The autocast dtype (None: full precision) and why it was chosen."""

    dtype: torch.dtype | None
    reason: str

    @property
    def name(self) -> str:
        return "off" if self.dtype is None else {v: k for k, v in _DTYPES.items()}[self.dtype]


def choose_amp(amp: str, device: torch.device) -> AmpChoice:
    """What `amp` ('off', 'auto', 'bf16', 'fp16') means on `device` (asks the GPU its capability)."""
    if amp == "off":
        return AmpChoice(None, "amp='off'")
    if device.type != "cuda":
        if amp == "auto":
            return AmpChoice(None, f"amp='auto' on {device.type}: full precision")
        return AmpChoice(_DTYPES[amp], f"amp='{amp}' on {device.type} (CPU autocast)")
    major, minor = torch.cuda.get_device_capability(device)
    native_bf16 = (major, minor) >= NATIVE_BF16_CAPABILITY
    where = f"{torch.cuda.get_device_name(device)}, sm{major}{minor}"
    if amp == "auto":
        chosen = "bf16" if native_bf16 else "fp16"
        return AmpChoice(_DTYPES[chosen], f"amp='auto' on {where}: {chosen}")
    if amp == "bf16" and not native_bf16:
        log.warning("amp='bf16' on %s is emulated and slower than fp16: use amp='auto'", where)
    return AmpChoice(_DTYPES[amp], f"amp='{amp}' on {where}")


class Precision:
    """Autocast and, for fp16, one gradient scaler per optimizer ('D' and 'G')."""

    def __init__(self, choice: AmpChoice, device: torch.device) -> None:
        self.choice, self.device = choice, device
        fp16 = choice.dtype is torch.float16
        self.scalers = {net: torch.amp.GradScaler(device.type, enabled=fp16) for net in ("D", "G")}

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.choice.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.choice.dtype)

    def backward(self, loss: torch.Tensor, net: str) -> None:
        self.scalers[net].scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, net: str) -> None:
        """The optimizer step (skipped by the scaler when fp16 gradients overflowed)."""
        self.scalers[net].step(optimizer)
        self.scalers[net].update()

    def scale(self, net: str) -> float:
        return float(self.scalers[net].get_scale()) if self.scalers[net].is_enabled() else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {f"{net}_scaler": scaler.state_dict() for net, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for net, scaler in self.scalers.items():
            if state.get(f"{net}_scaler"):
                scaler.load_state_dict(state[f"{net}_scaler"])


@contextlib.contextmanager
def flush_denormals(device: torch.device) -> Iterator[None]:
    """On a CPU, treat denormal floats as zero while training (about 8% faster steps here).

    Values below ~1e-38 carry nothing a GAN needs; CUDA kernels flush them already.
    """
    enabled = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            torch.set_flush_denormal(False)
