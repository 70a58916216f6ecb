"""Train lightweight-gan's networks with its own losses, on a CPU or GPUs, resumably.

The step is upstream's (src/gan/training/step.py); what differs is around it:
any device and precision, the images held once per device, exact resume from
atomic checkpoints that record the data they were trained on (mirrored where a
retried task finds them), and recovery from non-finite losses.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from src.common.rate import MovingRate
from src.common.stale_files import remove_stale_temporaries
from src.gan import random_state
from src.gan.config import TrainConfig
from src.gan.images import dataset_identity, load_images
from src.gan.model_folder import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from src.gan.networks.build import build_gan, pick_device
from src.gan.training.checkpoint_mirror import CheckpointMirror
from src.gan.training.checkpoints import (
    check_compatible,
    check_same_data,
    describe_data,
    export_upstream,
    save_checkpoint,
)
from src.gan.training.image_bank import ImageBank
from src.gan.training.live_sync import LiveSync
from src.gan.training.memory import check_device_memory, check_host_memory
from src.gan.training.precision import Precision, choose_amp, flush_denormals
from src.gan.training.ranks import (
    Ranks,
    any_rank,
    broadcast_parameters,
    check_same_weights,
    gather,
    plan_launch,
    run_launch,
)
from src.gan.training.settings import check_config
from src.gan.training.step import GanStep, NonFiniteLoss, StepLosses
from src.gan.training.stopping import Preempted, StopRequests
from src.gan.watching.record import TrainingRecord
from src.gan.watching.tensorboard_log import FOLDER as BOARD
from src.params import checks, rules

log = logging.getLogger(__name__)
OnStep = Callable[[int, StepLosses], None]


class TrainingDiverged(RuntimeError):
    """Losses stayed non-finite after every allowed restart."""


@dataclass
class TrainResult:
    """What a run did, for metrics and the summary."""

    start_step: int
    end_step: int
    seconds: float
    data_seconds: float
    device: str
    amp: str
    amp_reason: str
    image_count: int
    aug_prob: float
    nan_restarts: int
    gp_skipped: int
    final_d_loss: float | None  # the last logged interval's means, as on the last progress line
    final_g_loss: float | None
    world_size: int = 1
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_run(self) -> int:
        return self.end_step - self.start_step

    @property
    def steps_per_second(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("history")
        values.pop("frames")
        values["steps_per_second"] = self.steps_per_second
        return values


@dataclass
class _Run:
    """One training process's parts, for the functions of the loop."""

    ranks: Ranks
    config: TrainConfig
    model_dir: Path
    step: GanStep
    record: TrainingRecord
    data: dict[str, Any]
    mirror: CheckpointMirror | None
    live: LiveSync | None
    stop: StopRequests = field(default_factory=StopRequests)
    saved_step: int = -1
    saved_at: float = field(default_factory=time.monotonic)

    @property
    def gan(self) -> torch.nn.Module:
        return self.step.gan

    @property
    def device(self) -> torch.device:
        return self.step.device


def train_gan(
    data_dir: Path,
    model_dir: Path,
    config: TrainConfig,
    *,
    device: str = "auto",
    world_size: int | None = None,
    on_step: OnStep | None = None,
    checkpoint_root: str = "",
    resume_from: str = "",
) -> TrainResult:
    """Trains until `config.steps`, resuming from `model_dir/checkpoint.pt` when present.

    `world_size` processes train data-parallel (default: one per visible CUDA
    device, else one; a launcher such as torchrun decides instead when it set
    RANK/WORLD_SIZE); each takes `config.batch_size` images per micro-batch. With
    `checkpoint_root` (gs://... or a folder), every checkpoint is also copied there,
    and an empty `model_dir` first fetches the copy: a retried or resumed attempt
    continues where the last one saved. With neither, `resume_from` (a checkpoint.pt,
    gs:// or a path) fine-tunes that model on `data_dir` instead of starting afresh.
    """
    check_config(config)
    torch_device = pick_device(device)
    launch = plan_launch(torch_device, world_size)  # counts GPUs; opens no CUDA context
    _remove_what_killed_writers_left(model_dir, checkpoint_root)
    source = str(model_dir / CHECKPOINT_NAME)
    if checkpoint_root:
        mirror = CheckpointMirror(checkpoint_root)
        if mirror.fetch(model_dir, CHECKPOINT_NAME):
            source = mirror.location(CHECKPOINT_NAME)
            mirror.fetch_folder(model_dir, BOARD)  # the curves so far, continued, not replayed
    fetched = tempfile.TemporaryDirectory(prefix="resume-from-") if resume_from else nullcontext()
    with fetched as folder:
        start = _fetch_start(resume_from, model_dir, Path(folder)) if folder else None
        job = _Job(data_dir, model_dir, config, checkpoint_root, source, start, resume_from)
        on_step = None if launch.spawns else on_step
        with StopRequests(forward=True):  # ranks finish a requested stop; this process waits
            return run_launch(launch, torch_device, _train_process, job, on_step)


@dataclass(frozen=True)
class _Job:
    """What every training process gets: where the data and model are, how to train, and
    where a run without a checkpoint of its own starts (`start`: a fetched resume_from)."""

    data_dir: Path
    model_dir: Path
    config: TrainConfig
    checkpoint_root: str
    source: str
    start: Path | None = None
    resume_from: str = ""


def _fetch_start(resume_from: str, model_dir: Path, folder: Path) -> Path | None:
    """A local copy of `resume_from`'s checkpoint, when this run has none of its own."""
    if not resume_from or (model_dir / CHECKPOINT_NAME).exists():
        return None
    parent, name = resume_from.rstrip("/").rsplit("/", 1)
    if not CheckpointMirror(parent).fetch(folder, name, quiet=True):
        raise CheckpointError(
            f"resume_from={resume_from!r}: no checkpoint there: correct it or leave it empty"
        )
    if name != CHECKPOINT_NAME:
        (folder / name).rename(folder / CHECKPOINT_NAME)
    return folder


def _remove_what_killed_writers_left(model_dir: Path, checkpoint_root: str) -> None:
    """Half-written checkpoints of earlier, killed attempts (nothing of this run writes yet),
    in the model folder and a local checkpoint root that is this project's own."""
    root = CheckpointMirror(checkpoint_root).claim() if checkpoint_root else None
    folders = [model_dir] + ([root] if root else [])
    removed = [
        path
        for folder in folders
        for path in remove_stale_temporaries(folder, recursive=True, include_own=True)
    ]
    if removed:
        log.info("removed %d temporary files that killed writers left", len(removed))


def _train_process(
    ranks: Ranks, device: torch.device, job: _Job, on_step: OnStep | None
) -> TrainResult:
    """One training process: rank 0 logs, checkpoints and exports; all ranks step together."""
    if not ranks.is_main:
        logging.getLogger("src").setLevel(logging.WARNING)
    config, model_dir = job.config, job.model_dir
    with StopRequests() as stop:
        run, saved, fine_tune = _prepare(ranks, device, job)
        run.stop = stop
        start_step = _resume(run, saved, job, fine_tune)
        run.record.start(saved, start_step)
        if saved is None:
            _save(run, 0)
        if run.live is not None:
            run.live.announce()
        _log_start(run, start_step)
        started = time.monotonic()
        try:
            with flush_denormals(device):
                step, last, nan_restarts = _train_loop(run, start_step, started, on_step)
            if run.saved_step != step:  # nothing left to train: this folder still gets its files
                _save(run, step)
        finally:
            _close_record(run)
    seconds = time.monotonic() - started
    if ranks.is_main:
        scalers = run.step.precision.state_dict()
        export_upstream(model_dir, run.gan.state_dict(), config, step, scalers)
    return _result(run, start_step, step, seconds, last, nan_restarts)


def _prepare(
    ranks: Ranks, device: torch.device, job: _Job
) -> tuple[_Run, dict[str, Any] | None, bool]:
    """Checks the data, the checkpoint and the memory, then builds this process's parts.

    Returns the parts, the checkpoint to resume (or fine-tune) from, and whether it
    is a fine-tuning start (resume_from) rather than this run's own checkpoint.
    """
    config, model_dir, source = job.config, job.model_dir, job.source
    precision = Precision(choose_amp(config.amp, device), device)
    images = load_images(job.data_dir, config.channels, config.image_size)
    per_process = len(images) // ranks.world_size
    checks.require(rules.enough_images_problem(per_process, config.batch_size, ranks.world_size))
    data = dataset_identity(job.data_dir, images)
    saved, fine_tune = load_checkpoint(model_dir), False
    if saved is None and job.start is not None:
        saved, fine_tune, source = load_checkpoint(job.start), True, job.resume_from
    if saved is not None:
        check_compatible(saved, config, source)
        if not fine_tune:
            check_same_data(saved, data, source)
    random_state.seed_all(config.seed)
    gan = build_gan(config, device)
    broadcast_parameters(gan, ranks)
    check_device_memory(images.nbytes, gan, device)
    check_host_memory(config, gan, device, ranks.world_size)
    bank = ImageBank(images, config.channels, config.seed, device, ranks)
    aug_prob = config.aug_probability(len(bank))
    if ranks.rank > 0:  # rank 0 keeps the single-process streams
        random_state.seed_process(config.seed, ranks.rank, step=0, attempt=0)
    record = TrainingRecord(model_dir, config.seed, config.latent_dim, aug_prob, ranks.is_main)
    root = job.checkpoint_root
    mirror = CheckpointMirror(root) if root and ranks.is_main else None
    live = LiveSync(model_dir, mirror) if ranks.is_main else None
    step = GanStep(gan, bank, config, precision, aug_prob, ranks)
    return _Run(ranks, config, model_dir, step, record, data, mirror, live), saved, fine_tune


def _resume(run: _Run, saved: dict[str, Any] | None, job: _Job, fine_tune: bool) -> int:
    """The step to start from: 0, or the checkpoint's step with its whole state restored.

    Fine-tuning takes the weights, optimizers and scalers; the data order and random
    streams start afresh, for other images.
    """
    if saved is None:
        return 0
    if not fine_tune:
        _restore(run, saved)
        log.info("resuming from step %d (checkpoint %s)", saved["step"], job.source)
        return int(saved["step"])
    _restore_model(run, saved)
    trained_on = describe_data(saved["data"]) if saved.get("data") else "unrecorded images"
    log.info(
        "fine-tuning the model of %s (step %d, trained on %s) on %s",
        job.resume_from, saved["step"], trained_on, describe_data(run.data),
    )  # fmt: skip
    return int(saved["step"])


def _restore_model(run: _Run, saved: dict[str, Any], keep_precision: bool = False) -> None:
    """Weights, optimizers and (unless kept) the scalers from `saved`."""
    run.gan.load_state_dict(saved["gan"])
    run.gan.G_opt.load_state_dict(saved["G_opt"])
    run.gan.D_opt.load_state_dict(saved["D_opt"])
    if not keep_precision:
        run.step.precision.load_state_dict(saved)


def _restore(run: _Run, saved: dict[str, Any], keep_precision: bool = False) -> None:
    """The model (`_restore_model`), then the data order and random streams from `saved`."""
    _restore_model(run, saved, keep_precision)
    rank, bank = run.ranks.rank, run.step.bank
    if saved.get("world_size", 1) == run.ranks.world_size:
        own = saved if rank == 0 else saved["other_ranks"][rank - 1]
        bank.load_state_dict(own["bank"])
        random_state.restore(own["rng"], run.device)
        return
    log.warning(
        "checkpoint was written by %d training processes, this run has %d: weights and "
        "optimizers resume exactly, data order and random streams start afresh",
        saved.get("world_size", 1),
        run.ranks.world_size,
    )
    bank.load_state_dict(saved["bank"])
    bank.start_new_epoch()
    random_state.seed_process(run.config.seed, rank, int(saved["step"]), attempt=0)


def _save(run: _Run, step: int) -> None:
    """Checkpoints `step`. A collective: every rank calls it at the same steps."""
    run.record.snapshot(run.gan, step)
    own = {"rng": random_state.capture(run.device), "bank": run.step.bank.state_dict()}
    others = gather(own, run.ranks)[1:]  # collective
    check_same_weights(run.gan, run.ranks, step)  # collective
    # On every rank: `_stop`, `_due` and the end of training branch on them.
    run.saved_step, run.saved_at = step, time.monotonic()
    if not run.ranks.is_main:
        return
    state = {
        "step": step,
        "gan": run.gan.state_dict(),
        "G_opt": run.gan.G_opt.state_dict(),
        "D_opt": run.gan.D_opt.state_dict(),
        **run.step.precision.state_dict(),
        **own,
        "world_size": run.ranks.world_size,
        "other_ranks": others,
        "history": run.record.history,
        "frames": run.record.frames,
        "data": run.data,
    }
    save_checkpoint(run.model_dir, state, run.config)
    if run.mirror is not None:
        run.mirror.push(run.model_dir, CHECKPOINT_NAME)


def _train_loop(
    run: _Run, start_step: int, started: float, on_step: OnStep | None
) -> tuple[int, StepLosses | None, int]:
    """Steps until `config.steps`, logging, checkpointing and restarting after non-finite losses."""
    config = run.config
    step, restarts_in_row, nan_restarts = start_step, 0, 0
    last: StepLosses | None = None
    rate = MovingRate()
    while step < config.steps:
        if any_rank(run.stop.requested is not None, run.ranks, run.device):  # collective
            _stop(run, step)
        try:
            losses = run.step(step)
        except NonFiniteLoss as error:
            restarts_in_row += 1
            nan_restarts += 1
            _give_up_after(config, restarts_in_row, step, error)
            step = _restart(run, restarts_in_row, error)
            run.record.rewind(step)
            continue
        restarts_in_row, last = 0, losses
        step += 1
        if on_step is not None:
            on_step(step, losses)
        rate.update(step)
        if run.ranks.is_main:
            run.record.add(losses.tensors, losses.gp_skipped)
            if step % config.log_every == 0 or step == config.steps:
                row = run.record.close_interval(step, rate, time.monotonic() - started)
                _log_step(row, config.steps, rate)
                if run.live is not None and run.live.due():
                    run.record.flush()
                    run.live.sync()
        if step % config.save_every == 0 or step == config.steps or _due(run):
            _save(run, step)
    return step, last, nan_restarts


def _due(run: _Run) -> bool:
    """Whether checkpoint_minutes passed since the last save on any rank. A collective."""
    minutes = run.config.checkpoint_minutes
    late = minutes > 0 and time.monotonic() - run.saved_at >= minutes * 60
    return any_rank(late, run.ranks, run.device)


def _stop(run: _Run, step: int) -> None:
    """Saves (and mirrors) `step` if it is not saved yet, then raises Preempted. A collective."""
    if run.saved_step != step:
        _save(run, step)
    where = f" and mirrored to {run.mirror.location()}" if run.mirror is not None else ""
    name = run.stop.requested.name if run.stop.requested is not None else "another process's stop"
    raise Preempted(
        f"stopped by {name} after step {step}: its checkpoint is saved{where}; a retry of the "
        f"task (or `run --resume`) continues from step {step}"
    )


def _close_record(run: _Run) -> None:
    """Event files and the animation written, and what a person watches copied out one last time."""
    run.record.finish()
    if run.live is not None:
        run.live.sync()


def _give_up_after(config: TrainConfig, restarts_in_row: int, step: int, error: Exception) -> None:
    if restarts_in_row > config.max_nan_restarts:
        raise TrainingDiverged(
            f"losses stayed non-finite after {config.max_nan_restarts} restarts at step {step} "
            f"({error}): lower learning_rate (now {config.learning_rate}), set amp='off', "
            "or check the data"
        ) from error


def _restart(run: _Run, attempt: int, error: Exception) -> int:
    """Back to the last checkpoint with fresh random streams; the scalers keep their backoff."""
    saved = load_checkpoint(run.model_dir)
    _restore(run, saved, keep_precision=True)
    random_state.seed_process(run.config.seed, run.ranks.rank, int(saved["step"]), attempt)
    log.warning(
        "%s; reloaded checkpoint at step %d (restart %d/%d)",
        error,
        saved["step"],
        attempt,
        run.config.max_nan_restarts,
    )
    return int(saved["step"])


def _log_start(run: _Run, start_step: int) -> None:
    ranks, config = run.ranks, run.config
    where = run.device if not ranks.distributed else f"{ranks.world_size} x {run.device.type}"
    log.info(
        "training %d images at %dpx on %s (%s, aug_prob %.2f), steps %d -> %d",
        len(run.step.bank),
        config.image_size,
        where,
        run.step.precision.choice.reason,
        run.record.aug_prob,
        start_step,
        config.steps,
    )


def _log_step(row: dict[str, Any], total: int, rate: MovingRate) -> None:
    """The progress line: the interval's mean losses, moving rate (warm-up left out), ETA."""
    log.info(
        "step %d/%d  d=%.3f g=%.3f  %s steps/s  ETA %s",
        row["step"],
        total,
        row["d_loss"],
        row["g_loss"],
        f"{rate.rate:.2f}" if rate.rate else "?",
        rate.eta(total - row["step"]),
    )


def _result(
    run: _Run,
    start_step: int,
    step: int,
    seconds: float,
    last: StepLosses | None,
    nan_restarts: int,
) -> TrainResult:
    # The final losses are the last logged interval's means, as on the last progress line
    # (also for a resumed run with no steps left); a process that logs nothing has its last step.
    history = run.record.history
    final = (history[-1]["d_loss"], history[-1]["g_loss"]) if history else None
    if final is None and last:
        final = (last.d_loss, last.g_loss)
    choice = run.step.precision.choice
    return TrainResult(
        start_step=start_step,
        end_step=step,
        seconds=seconds,
        data_seconds=run.step.data_seconds,
        device=str(run.device),
        amp=choice.name,
        amp_reason=choice.reason,
        image_count=len(run.step.bank),
        aug_prob=run.record.aug_prob,
        nan_restarts=nan_restarts,
        gp_skipped=run.record.gp_skipped,
        final_d_loss=final[0] if final else None,
        final_g_loss=final[1] if final else None,
        world_size=run.ranks.world_size,
        history=history,
        frames=run.record.frames,
    )
