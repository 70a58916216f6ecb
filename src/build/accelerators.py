"""GPU requests for the train task, spelled the way each backend wants them, from one table.

Vertex AI takes an accelerator enum name (NVIDIA_TESLA_T4) and picks the machine
from the CPU and memory limits; an open-source KFP backend copies the type into
the pod's resource limits, so it must be `nvidia.com/gpu`, with the GKE node
label picking the GPU model. Kubernetes schedules by requests (a limit alone
becomes the request), so the KFP task requests what the usual node of its GPU
can give after GKE's reservations and the GPU node's daemon sets.
"""

from __future__ import annotations

import difflib
import math
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


@dataclass(frozen=True)
class Machine:
    """A Compute Engine machine type that carries some number of one GPU model."""

    name: str
    vcpus: int
    memory_gib: float


@dataclass(frozen=True)
class Gpu:
    """A GPU model the train step can use: its GKE node label and machines by GPU count."""

    gke_label: str
    machines: dict[int, Machine]
    spot: bool = True  # offered as spot capacity (Vertex AI custom training and GKE spot nodes)


def _scaled(vcpus: int, memory_gib: float, names: dict[int, str]) -> dict[int, Machine]:
    """Machines whose vCPUs and memory grow with their GPU count: `{1: "n1-standard-8", ...}`."""
    return {
        count: Machine(name, vcpus * count, memory_gib * count) for count, name in names.items()
    }


_N1 = {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"}
_G2 = {
    1: Machine("g2-standard-8", 8, 32),
    2: Machine("g2-standard-24", 24, 96),
    4: Machine("g2-standard-48", 48, 192),
    8: Machine("g2-standard-96", 96, 384),
}
# The CUDA GPUs of the pinned PyTorch image (CUDA 12.4: up to sm90) and their usual machines
# (cloud.google.com/compute/docs/gpus, read 2026-12-01). K80 (retired), B200/GB200 (sm100 needs
# a newer CUDA), RTX PRO 6000 and TPUs cannot run this step.
GPUS: dict[str, Gpu] = {
    "NVIDIA_TESLA_T4": Gpu("nvidia-tesla-t4", _scaled(8, 30, _N1)),
    "NVIDIA_L4": Gpu("nvidia-l4", _G2),
    "NVIDIA_TESLA_V100": Gpu("nvidia-tesla-v100", _scaled(8, 30, {**_N1, 8: "n1-standard-64"})),
    "NVIDIA_TESLA_P100": Gpu("nvidia-tesla-p100", _scaled(8, 30, _N1)),
    "NVIDIA_TESLA_P4": Gpu("nvidia-tesla-p4", _scaled(8, 30, _N1)),
    "NVIDIA_TESLA_A100": Gpu("nvidia-tesla-a100", _scaled(12, 85, {n: f"a2-highgpu-{n}g" for n in (1, 2, 4, 8)})),
    "NVIDIA_A100_80GB": Gpu("nvidia-a100-80gb", _scaled(12, 170, {n: f"a2-ultragpu-{n}g" for n in (1, 2, 4, 8)})),
    "NVIDIA_H100_80GB": Gpu("nvidia-h100-80gb", _scaled(26, 234, {n: f"a3-highgpu-{n}g" for n in (1, 2, 4, 8)})),
    # A3 Mega and Ultra come through reservations and flex-start: no spot offering assumed.
    "NVIDIA_H100_MEGA_80GB": Gpu("nvidia-h100-mega-80gb", {8: Machine("a3-megagpu-8g", 208, 1872)}, spot=False),
    "NVIDIA_H200_141GB": Gpu("nvidia-h200-141gb", {8: Machine("a3-ultragpu-8g", 224, 2952)}, spot=False),
}  # fmt: skip
GKE_GPU_RESOURCE = "nvidia.com/gpu"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GKE_SPOT_LABEL = "cloud.google.com/gke-spot"  # "true" on spot nodes, which are also tainted so
# What a GKE GPU node's daemon sets (device plugin, kube-proxy, logging, metrics, CSI) request.
DAEMON_SET_CPU = 0.5
DAEMON_SET_MEMORY_GIB = 1.5
SHM_SHARE = 4  # /dev/shm may take a quarter of the task's memory request
_QUANTITY = re.compile(r"^(\d+(\.\d+)?)(m|[KMGTPE]i?)?$")
_UNIT = {"": 1, "m": 1e-3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_UNIT |= {f"{k}i": 1024 ** (i + 1) for i, k in enumerate("KMGTPE")}


def normalise_accelerator(name: str) -> str:
    """Accepts `NVIDIA_L4`, `nvidia-l4` or `nvidia_l4`; returns the Vertex enum name."""
    candidate = name.strip().upper().replace("-", "_")
    by_label = {gpu.gke_label.upper().replace("-", "_"): key for key, gpu in GPUS.items()}
    candidate = by_label.get(candidate, candidate)
    if candidate in GPUS:
        return candidate
    what = (
        f"accelerator {name!r} is not a CUDA GPU this step can run on"
        if candidate in VERTEX_ACCELERATORS
        else f"unknown accelerator {name!r}"
    )
    # `T4`, `A100`, `H100`: a GPU's short name is a word of its full one
    words = [key for key in GPUS if candidate and candidate in key.split("_")]
    close = words[:3] or difflib.get_close_matches(candidate, GPUS, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"{what}.{hint} Choose one of (the same names on Vertex AI and on GKE): {', '.join(GPUS)}"
    )


def quantity(value: str) -> float:
    """A Kubernetes quantity ('8', '500m', '30G', '16Gi') as a number of cores or bytes."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(value)
    return float(match.group(1)) * _UNIT[match.group(3) or ""]


def gke_allocatable(machine: Machine) -> tuple[float, float]:
    """CPU cores and memory bytes a GKE node of `machine` leaves to pods.

    GKE's documented reservations (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes):
    CPU 6% of the first core, 1% of the next, 0.5% of the next 2, 0.25% above 4;
    memory 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the
    next 112, 2% above 128, plus a 100 MiB eviction threshold.
    """
    cores, memory = machine.vcpus, machine.memory_gib
    cpu_bands = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    memory_bands = ((4, 0.25), (4, 0.2), (8, 0.1), (112, 0.06), (math.inf, 0.02))
    reserved_cpu = _banded(cores, cpu_bands)
    reserved_memory = _banded(memory, memory_bands) + 100 / 1024
    return cores - reserved_cpu, (memory - reserved_memory) * 1024**3


def _banded(amount: float, bands: tuple[tuple[float, float], ...]) -> float:
    total = 0.0
    for width, share in bands:
        part = min(amount, width)
        total, amount = total + part * share, amount - part
    return total


@dataclass(frozen=True)
class GpuRequest:
    """What the train task asks for: accelerator, count, and CPU and memory (None: its machine's)."""

    accelerator: str = "NVIDIA_TESLA_T4"
    count: int = 1
    cpu_limit: str | None = None
    memory_limit: str | None = None

    def validated(self, target: str) -> GpuRequest:
        """A copy with the accelerator normalised and the limits filled in; ConfigError if bad."""
        accelerator = normalise_accelerator(self.accelerator)
        counts = GPUS[accelerator].machines
        if self.count not in counts:
            raise ConfigError(
                f"{self.count} x {accelerator} is not a machine Google Cloud offers: use "
                f"--accelerator-count {' or '.join(map(str, counts))}"
            )
        machine = counts[self.count]
        cpu = self.cpu_limit or f"{machine.vcpus}"
        memory = self.memory_limit or f"{machine.memory_gib:g}G"
        for name, value, example in (
            ("cpu_limit", cpu, "'8' or '7500m'"),
            ("memory_limit", memory, "'30G', '500M' or '16Gi'"),
        ):
            if not _QUANTITY.match(value) or quantity(value) <= 0:
                raise ConfigError(f"{name}={value!r} is not a positive quantity such as {example}")
        return GpuRequest(accelerator, self.count, cpu, memory)  # fmt: skip

    @property
    def machine(self) -> Machine:
        return GPUS[normalise_accelerator(self.accelerator)].machines[self.count]

    @property
    def gke_node_label(self) -> str:
        return GPUS[normalise_accelerator(self.accelerator)].gke_label

    def gke_requests(self) -> tuple[str, str]:
        """CPU and memory requests that fit the usual node, never above the limits."""
        cpu, memory = gke_allocatable(self.machine)
        cpu = min(cpu - DAEMON_SET_CPU, quantity(self.cpu_limit))
        memory = min(memory - DAEMON_SET_MEMORY_GIB * 1024**3, quantity(self.memory_limit))
        return f"{math.floor(cpu * 10) * 100}m", f"{math.floor(memory / 2**20 / 100) * 100}Mi"

    def shm_size(self) -> str:
        """The memory-backed /dev/shm of the KFP task: a share of its memory request."""
        _, memory = self.gke_requests()
        return f"{max(1, math.floor(quantity(memory) / SHM_SHARE / 2**30))}Gi"
