"""Data-parallel training over several GPUs (or CPU processes): one process per device.

Each process (rank) trains the same networks on its own shard of every epoch
and its own latents; before each optimizer step the gradients are averaged
over all ranks with one all-reduce, which is what DDP does. We average by hand
instead of wrapping the networks in DDP because a GAN step calls the
discriminator twice before one backward, differentiates twice for the gradient
penalty and freezes D during the generator step: patterns DDP's bucketed hooks
reject or mis-handle (upstream's `--multi-gpus` fails on them). A non-finite
loss on any rank travels in the same all-reduce, so every rank restarts
together. BatchNorm running statistics are rank 0's, as with DDP's default.

Processes start in one of three ways (`plan_launch`): a launcher that sets
RANK, LOCAL_RANK and WORLD_SIZE per process (torchrun) makes this process one
rank; one that sets RANK and WORLD_SIZE per machine (Vertex AI and Kubeflow
multi-replica jobs) makes it a node that spawns a process per local GPU;
otherwise this machine is the whole job. Nothing here opens a CUDA context
before the ranks start.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from src.common.errors import ConfigError
from src.common.net import free_port
from src.common.step_logging import configure_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the GPU this process uses on its machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Ranks()


@dataclass(frozen=True)
class Launch:
    """How a run's training processes start.

    `local` processes run on this machine (1 with no `external` rank: train in this
    process); they take global ranks `first_rank` onwards of `world_size`.
    `external` is set when an outside launcher already made this process a rank.
    """

    device_type: str
    local: int = 1
    world_size: int = 1
    first_rank: int = 0
    master: tuple[str, int] | None = None  # from the launcher; None: 127.0.0.1, a free port
    external: Ranks | None = None

    @property
    def spawns(self) -> bool:
        return self.external is None and self.world_size > 1


def visible_gpus() -> int:
    """CUDA devices this process sees (counting them opens no CUDA context)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_launch(
    device: torch.device, requested: int | None, env: Mapping[str, str] = os.environ
) -> Launch:
    """The launch for `device` with `requested` local processes (None: one per visible GPU)."""
    if requested is not None and requested < 1:
        raise ConfigError(f"world_size={requested}: use 1 or more training processes")
    if "LOCAL_RANK" in env and "WORLD_SIZE" in env:
        return _launched_per_process(device, requested, env)
    nodes = int(env.get("WORLD_SIZE", "1"))
    local = requested or (visible_gpus() if device.type == "cuda" and device.index is None else 1)
    local = max(1, local)
    if device.type == "cuda" and local > 1 and local > visible_gpus():
        raise ConfigError(
            f"world_size={local} but only {visible_gpus()} CUDA devices are visible: request "
            "that many GPUs for the task or lower train_processes"
        )
    if nodes > 1 and "MASTER_ADDR" in env:
        node = int(env.get("RANK", "0"))
        master = (env["MASTER_ADDR"], int(env.get("MASTER_PORT", "29500")))
        return Launch(device.type, local, nodes * local, node * local, master)
    return Launch(device.type, local, local)


def _launched_per_process(
    device: torch.device, requested: int | None, env: Mapping[str, str]
) -> Launch:
    ranks = Ranks(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))
    if requested not in (None, ranks.world_size):
        raise ConfigError(
            f"train_processes={requested} but the launcher started {ranks.world_size} "
            "processes (WORLD_SIZE): set train_processes=0 to follow the launcher"
        )
    return Launch(device.type, 1, ranks.world_size, ranks.rank, external=ranks)


def rank_device(device_type: str, local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if device_type == "cuda" else torch.device(device_type)


def run_launch(launch: Launch, device: torch.device, target: Callable[..., Any], *args: Any) -> Any:
    """Runs `target(ranks, device, *args)` as `launch` says; returns this machine's first result."""
    if launch.external is not None:
        ranks = launch.external
        return _as_rank(ranks, rank_device(launch.device_type, ranks.local_rank), target, args)
    if not launch.spawns:
        return target(SINGLE, device, *args)
    log.info(
        "training on %d processes (%s), gradients averaged each step",
        launch.world_size,
        launch.device_type,
    )
    return _spawn(launch, target, args)


def _as_rank(ranks: Ranks, device: torch.device, target: Callable[..., Any], args: tuple) -> Any:
    """Joins the process group (addresses from the environment), runs `target`, leaves."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        # The ranks share the machine's cores; without this each would start one thread per core.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world_size))
    dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size)
    try:
        result = target(ranks, device, *args)
        dist.barrier()  # leaving while a peer still works can abort in teardown (gloo)
        return result
    finally:
        dist.destroy_process_group()


def _spawn(launch: Launch, target: Callable[..., Any], args: tuple) -> Any:
    """`launch.local` processes; an exception in any stops them all and is raised here as itself."""
    master = launch.master or ("127.0.0.1", free_port())
    with tempfile.TemporaryDirectory(prefix="ranks-") as name:
        folder = Path(name)
        try:
            mp.start_processes(
                _rank_main,
                args=(launch, master, folder, _log_level(), target, args),
                nprocs=launch.local,
                join=True,
                start_method="spawn",
            )
        except mp.ProcessRaisedException:
            errors = [_read_outcome(folder, local_rank) for local_rank in range(launch.local)]
            errors = [outcome["error"] for outcome in errors if outcome and "error" in outcome]
            # A rank that crashed closes its peers' connections: its own error is the cause.
            errors.sort(key=lambda error: "closed by peer" in str(error))
            if errors:
                raise errors[0] from None
            raise
        outcome = _read_outcome(folder, 0)
    if outcome is None:
        raise RuntimeError("the first training process ended without a result")
    return outcome["result"]


def _rank_main(
    local_rank: int,
    launch: Launch,
    master: tuple[str, int],
    folder: Path,
    log_level: int,
    target: Callable[..., Any],
    args: tuple,
) -> None:
    configure_logging(log_level)
    os.environ.update(MASTER_ADDR=master[0], MASTER_PORT=str(master[1]))
    ranks = Ranks(launch.first_rank + local_rank, launch.world_size, local_rank)
    try:
        result = _as_rank(ranks, rank_device(launch.device_type, local_rank), target, args)
        _write_outcome(folder, local_rank, {"result": result if local_rank == 0 else None})
    except BaseException as error:
        _write_outcome(folder, local_rank, {"error": error, "traceback": traceback.format_exc()})
        raise


def average_gradients(params: Iterable[torch.nn.Parameter], ranks: Ranks, failed: bool) -> bool:
    """Averages `.grad` over ranks in one all-reduce (a collective); True when any rank `failed`.

    A parameter without a gradient counts as zero (and gets one). With one
    rank nothing is communicated.
    """
    if not ranks.distributed:
        return failed
    params = [p for p in params if p.requires_grad]
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    grads = [p.grad for p in params]
    flag = torch.tensor([1.0 if failed else 0.0], device=grads[0].device, dtype=grads[0].dtype)
    flat = torch.cat([g.reshape(-1) for g in grads] + [flag])
    dist.all_reduce(flat)
    if flat[-1].item() > 0:
        return True
    flat.div_(ranks.world_size)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
    return False


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """True when `flag` is set on any rank (a collective; no communication with one rank)."""
    if not ranks.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's `value`, in rank order (a collective; a list of one without distribution)."""
    if not ranks.distributed:
        return [value]
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_parameters(module: torch.nn.Module, ranks: Ranks) -> None:
    """Rank 0's weights and buffers everywhere, so every rank starts identical (a collective)."""
    if ranks.distributed:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def check_same_weights(module: torch.nn.Module, ranks: Ranks, step: int) -> None:
    """Raises on every rank if the ranks' weights differ (a collective)."""
    if not ranks.distributed:
        return
    checksums = gather(
        float(sum(p.detach().double().sum().item() for p in module.parameters())), ranks
    )
    if len(set(checksums)) > 1:
        raise RuntimeError(
            f"training processes hold different weights at step {step} (checksums "
            f"{checksums}): this is a bug in gradient averaging; resume from the last checkpoint"
        )


def _write_outcome(folder: Path, rank: int, outcome: dict[str, Any]) -> None:
    temporary = folder / f".rank{rank}.tmp"
    try:
        temporary.write_bytes(pickle.dumps(outcome))
    except Exception as error:  # an unpicklable exception still reports its text
        message = f"{type(outcome.get('error')).__name__}: {outcome.get('error')} ({error})"
        temporary.write_bytes(pickle.dumps({"error": RuntimeError(message)}))
    temporary.replace(folder / f"rank{rank}.pickle")


def _read_outcome(folder: Path, rank: int) -> dict[str, Any] | None:
    path = folder / f"rank{rank}.pickle"
    return pickle.loads(path.read_bytes()) if path.exists() else None


def _log_level() -> int:
    """The parent's effective level for this project's loggers, for the spawned ranks."""
    return logging.getLogger("src").getEffectiveLevel()
