"""GPU requests for the train task, spelled the way each backend wants them.

Vertex AI takes an accelerator enum name (NVIDIA_TESLA_T4); an open-source KFP
backend copies the type into the pod's resource limits, so it must be
`nvidia.com/gpu`, with the GKE node label picking the GPU model.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from src.common.errors import ConfigError

# Members of google.cloud.aiplatform_v1.types.AcceleratorType that are GPUs or TPUs
# (kept here so compiling imports no aiplatform; a test checks it against the enum).
VERTEX_ACCELERATORS: tuple[str, ...] = (
    "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_L4",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
    "NVIDIA_GB200",
    "NVIDIA_RTX_PRO_6000",
    "TPU_V2",
    "TPU_V3",
    "TPU_V4_POD",
    "TPU_V5_LITEPOD",
)

# GKE's `cloud.google.com/gke-accelerator` node label for each NVIDIA type.
GKE_NODE_LABELS: dict[str, str] = {
    "NVIDIA_TESLA_K80": "nvidia-tesla-k80",
    "NVIDIA_TESLA_P100": "nvidia-tesla-p100",
    "NVIDIA_TESLA_V100": "nvidia-tesla-v100",
    "NVIDIA_TESLA_P4": "nvidia-tesla-p4",
    "NVIDIA_TESLA_T4": "nvidia-tesla-t4",
    "NVIDIA_TESLA_A100": "nvidia-tesla-a100",
    "NVIDIA_A100_80GB": "nvidia-a100-80gb",
    "NVIDIA_L4": "nvidia-l4",
    "NVIDIA_H100_80GB": "nvidia-h100-80gb",
    "NVIDIA_H100_MEGA_80GB": "nvidia-h100-mega-80gb",
    "NVIDIA_H200_141GB": "nvidia-h200-141gb",
    "NVIDIA_B200": "nvidia-b200",
}
GKE_GPU_RESOURCE = "nvidia.com/gpu"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|[KMGT]i?)?$")


def normalise_accelerator(name: str) -> str:
    """Accepts `NVIDIA_L4`, `nvidia-l4` or `nvidia_l4`; returns the Vertex enum name."""
    candidate = name.strip().upper().replace("-", "_")
    if candidate in VERTEX_ACCELERATORS:
        return candidate
    by_label = {label.upper().replace("-", "_"): key for key, label in GKE_NODE_LABELS.items()}
    if candidate in by_label:
        return by_label[candidate]
    close = difflib.get_close_matches(candidate, VERTEX_ACCELERATORS, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown accelerator {name!r}.{hint} Valid names: {', '.join(VERTEX_ACCELERATORS)}"
    )


@dataclass(frozen=True)
class GpuRequest:
    """What the train task asks for: accelerator, count, CPU and memory limits."""

    accelerator: str = "NVIDIA_TESLA_T4"
    count: int = 1
    cpu_limit: str = "8"
    memory_limit: str = "30G"

    def validated(self, target: str) -> GpuRequest:
        """A copy with the accelerator normalised; raises ConfigError on bad values."""
        accelerator = normalise_accelerator(self.accelerator)
        if self.count < 1:
            raise ConfigError(f"accelerator count {self.count} must be at least 1")
        if target == "kfp" and accelerator not in GKE_NODE_LABELS:
            raise ConfigError(
                f"{accelerator} has no GKE GPU node label: for the kfp target choose one of "
                f"{', '.join(GKE_NODE_LABELS)}"
            )
        for name, value in (("cpu_limit", self.cpu_limit), ("memory_limit", self.memory_limit)):
            if not _QUANTITY.match(value):
                raise ConfigError(
                    f"{name}={value!r} is not a quantity such as '8', '500m', '30G' or '16Gi'"
                )
        return GpuRequest(accelerator, self.count, self.cpu_limit, self.memory_limit)

    @property
    def gke_node_label(self) -> str:
        return GKE_NODE_LABELS[normalise_accelerator(self.accelerator)]
