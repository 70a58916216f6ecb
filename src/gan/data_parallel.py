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
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from src.common.net import free_port
from src.common.step_logging import configure_logging


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Ranks()


def average_gradients(params: Iterable[torch.nn.Parameter], ranks: Ranks, failed: bool) -> bool:
    """Averages `.grad` over ranks in one all-reduce; True when any rank `failed`.

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


def gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's `value`, in rank order (a list of one without distribution)."""
    if not ranks.distributed:
        return [value]
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_parameters(module: torch.nn.Module, ranks: Ranks) -> None:
    """Rank 0's weights and buffers everywhere, so every rank starts identical."""
    if ranks.distributed:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def weights_checksum(module: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum().item() for p in module.parameters()))


def run_on_ranks(world_size: int, device_type: str, target: Callable[..., Any], *args: Any) -> Any:
    """Runs `target(ranks, device, *args)` in `world_size` processes; returns rank 0's result.

    An exception in any rank stops them all and is raised here as it was raised there.
    """
    with tempfile.TemporaryDirectory(prefix="ranks-") as name:
        folder = Path(name)
        try:
            mp.start_processes(
                _rank_main,
                args=(world_size, device_type, free_port(), folder, _log_level(), target, args),
                nprocs=world_size,
                join=True,
                start_method="spawn",
            )
        except mp.ProcessRaisedException:
            for rank in range(world_size):
                outcome = _read_outcome(folder, rank)
                if outcome is not None and "error" in outcome:
                    raise outcome["error"] from None
            raise
        outcome = _read_outcome(folder, 0)
    if outcome is None:
        raise RuntimeError("rank 0 ended without a result")
    return outcome["result"]


def _rank_main(
    rank: int,
    world_size: int,
    device_type: str,
    port: int,
    folder: Path,
    log_level: int,
    target: Callable[..., Any],
    args: tuple,
) -> None:
    configure_logging(log_level)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if device_type == "cuda":
        torch.cuda.set_device(rank)
        device, backend = torch.device("cuda", rank), "nccl"
    else:
        device, backend = torch.device(device_type), "gloo"
        # The ranks share the machine's cores; without this each would start one thread per core.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        result = target(Ranks(rank, world_size), device, *args)
        _write_outcome(folder, rank, {"result": result if rank == 0 else None})
    except BaseException as error:
        _write_outcome(folder, rank, {"error": error, "traceback": traceback.format_exc()})
        raise
    finally:
        dist.destroy_process_group()


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
