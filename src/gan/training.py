"""Train lightweight-gan's networks with its own losses, on CPU or CUDA, resumably.

One step is upstream's `Trainer.train` (lightweight_gan.py, lines 1197-1390 in
1.2.1): hinge (or dual contrastive) loss on the main and 32x32 outputs, the
discriminator's reconstruction loss, a gradient penalty every 4th step, the
same augmentation and the same EMA schedule (src/gan/schedule.py). What differs is around the step:
any device, bf16/fp16 autocast, an in-memory dataset, exact resume from atomic
checkpoints, and recovery from non-finite losses.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.autograd import grad as torch_grad

from src.common.errors import ConfigError
from src.common.progress import MovingRate
from src.gan.checkpoint import (
    CHECKPOINT_NAME,
    check_compatible,
    export_upstream,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from src.gan.checkpoint_mirror import CheckpointMirror
from src.gan.config import TrainConfig
from src.gan.data_parallel import (
    SINGLE,
    Ranks,
    average_gradients,
    broadcast_parameters,
    gather,
    run_on_ranks,
    weights_checksum,
)
from src.gan.image_bank import ImageBank, load_image_folder
from src.gan.model import build_gan, pick_device
from src.gan.schedule import applies_gradient_penalty, averages_ema, resets_ema
from src.gan.training_record import TrainingRecord
from src.gan.upstream import upstream
from src.params import checks

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite in this step."""


class TrainingDiverged(RuntimeError):
    """Losses stayed non-finite after every allowed restart."""


class StepLosses:
    """One step's losses, kept on the device until someone reads them (no host sync per step)."""

    def __init__(
        self, d_loss: torch.Tensor, g_loss: torch.Tensor, gp: torch.Tensor | None, aux: torch.Tensor
    ) -> None:
        self._values = (d_loss, g_loss, gp, aux)

    @property
    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        return self._values

    @property
    def d_loss(self) -> float:
        return float(self._values[0])

    @property
    def g_loss(self) -> float:
        return float(self._values[1])

    @property
    def gp(self) -> float | None:
        return None if self._values[2] is None else float(self._values[2])

    @property
    def aux(self) -> float:
        return float(self._values[3])


@dataclass
class TrainResult:
    """What a run did, for metrics and the summary."""

    start_step: int
    end_step: int
    seconds: float
    data_seconds: float
    device: str
    amp: str
    image_count: int
    aug_prob: float
    nan_restarts: int
    final_d_loss: float | None
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


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision."""
    if amp == "off":
        return None
    if device.type != "cuda":
        if amp == "auto":
            return None
        raise ConfigError(f"amp={amp!r} needs a CUDA device: use amp='auto' or 'off' on a CPU")
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


class StepRunner:
    """Runs training steps exactly as upstream's Trainer does, on any device."""

    def __init__(
        self,
        gan,
        bank: ImageBank,
        config: TrainConfig,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        aug_prob: float,
        ranks: Ranks = SINGLE,
    ) -> None:
        self.gan, self.bank, self.config, self.device = gan, bank, config, device
        self.ranks = ranks
        self.amp_dtype = amp_dtype
        fp16 = amp_dtype is torch.float16
        self.d_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.g_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.aug_kwargs = {"prob": aug_prob, "types": list(config.aug_types)}
        self.mirror: CheckpointMirror | None = None  # where rank 0 copies each checkpoint
        self.data_seconds = 0.0
        module = upstream()
        self.d_loss_fn = (
            module.dual_contrastive_loss if config.dual_contrast_loss else module.hinge_loss
        )
        self.g_loss_fn = (
            module.dual_contrastive_loss if config.dual_contrast_loss else module.gen_hinge_loss
        )

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _batch(self) -> torch.Tensor:
        started = time.perf_counter()
        batch = self.bank.next_batch(self.config.batch_size)
        self.data_seconds += time.perf_counter() - started
        return batch

    def _latents(self) -> torch.Tensor:
        # Drawn on the CPU like upstream's `torch.randn(...).cuda()`: same stream on any device.
        return torch.randn(self.config.batch_size, self.config.latent_dim).to(self.device)

    def step(self, step: int) -> StepLosses:
        """One discriminator and one generator update; `step` is upstream's `self.steps`."""
        self.gan.train()
        d_loss, gp, aux = self.discriminator_update(applies_gradient_penalty(step))
        g_loss = self.generator_update()
        self.ema_update(step)
        return StepLosses(d_loss, g_loss, gp, aux)

    def discriminator_update(
        self, apply_gp: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Hinge (or dual contrastive) loss on D's main and 32x32 outputs, plus its aux loss."""
        gan, accumulate = self.gan, self.config.gradient_accumulate_every
        total, last_gp, failure = torch.zeros([], device=self.device), None, None
        gan.D_opt.zero_grad()
        for _ in range(accumulate):
            latents, image_batch = self._latents(), self._batch()
            with self.autocast():
                with torch.no_grad():
                    generated = gan.G(latents)
                if apply_gp:
                    image_batch.requires_grad_()
                generated, (fake_output, fake_32, _) = gan.D_aug(
                    generated,
                    detach=True,
                    input_requires_grad=apply_gp,
                    return_discr_input=True,
                    **self.aug_kwargs,
                )
                real_output, real_32, real_aux = gan.D_aug(
                    image_batch, calc_aux_loss=True, **self.aug_kwargs
                )
                divergence = self.d_loss_fn(real_output, fake_output)
                disc_loss = divergence + self.d_loss_fn(real_32, fake_32) + real_aux
            if apply_gp:
                gp = self.gradient_penalty(
                    (real_output, real_32), image_batch, (fake_output, fake_32), generated
                )
                if gp is not None:
                    disc_loss, last_gp = disc_loss + gp, gp.detach()
            with self.autocast():
                disc_loss = disc_loss / accumulate
            if not torch.isfinite(disc_loss).all():
                failure = failure or f"discriminator loss is {disc_loss.item()}"
                continue
            self.d_scaler.scale(disc_loss).backward()
            total += divergence.detach()
        self._average_or_raise(gan.D_opt, failure)
        self.d_scaler.step(gan.D_opt)
        self.d_scaler.update()
        return total / accumulate, last_gp, real_aux.detach()

    def gradient_penalty(
        self,
        real_outputs: tuple[torch.Tensor, ...],
        real_images: torch.Tensor,
        fake_outputs: tuple[torch.Tensor, ...],
        fake_images: torch.Tensor,
    ) -> torch.Tensor | None:
        """gp_weight x mean squared norm of D's input gradients, real and fake (upstream's R1 form).

        None when fp16 scaling overflowed or the penalty is NaN: upstream then skips it.
        """
        fp16 = self.amp_dtype is torch.float16
        if fp16:
            real_outputs = tuple(self.d_scaler.scale(t) for t in real_outputs)
            fake_outputs = tuple(self.d_scaler.scale(t) for t in fake_outputs)
        grads = [
            torch_grad(
                outputs=list(outputs),
                inputs=inputs,
                grad_outputs=[torch.ones_like(t) for t in outputs],
                create_graph=True,
                retain_graph=True,
                only_inputs=True,
            )[0]
            for outputs, inputs in ((real_outputs, real_images), (fake_outputs, fake_images))
        ]
        inv_scale = _safe_inverse(self.d_scaler.get_scale()) if fp16 else 1.0
        if inv_scale == float("inf"):
            return None
        gradients = torch.cat(grads) * inv_scale
        with self.autocast():
            gradients = gradients.reshape(2 * self.config.batch_size, -1)
            gp = self.config.gp_weight * (gradients.norm(2, dim=1) ** 2).mean()
        return None if torch.isnan(gp) else gp

    def generator_update(self) -> torch.Tensor:
        """G's loss against a frozen D (D's weight gradients are not needed here)."""
        gan, cfg = self.gan, self.config
        accumulate = cfg.gradient_accumulate_every
        total, failure = torch.zeros([], device=self.device), None
        gan.G_opt.zero_grad()
        for _ in range(accumulate):
            latents = self._latents()
            if cfg.dual_contrast_loss:
                image_batch = self._batch()
                image_batch.requires_grad_()
            with self.autocast(), frozen(gan.D):
                generated = gan.G(latents)
                fake_output, fake_32, _ = gan.D_aug(generated, **self.aug_kwargs)
                real_output, real_32 = (None, None)
                if cfg.dual_contrast_loss:
                    real_output, real_32, _ = gan.D_aug(image_batch, **self.aug_kwargs)
                loss = self.g_loss_fn(fake_output, real_output)
                gen_loss = (loss + self.g_loss_fn(fake_32, real_32)) / accumulate
            if not torch.isfinite(gen_loss).all():
                failure = failure or f"generator loss is {gen_loss.item()}"
                continue
            self.g_scaler.scale(gen_loss).backward()
            total += loss.detach()
        self._average_or_raise(gan.G_opt, failure)
        self.g_scaler.step(gan.G_opt)
        self.g_scaler.update()
        return total / accumulate

    def ema_update(self, step: int) -> None:
        """Upstream's EMA schedule for GE (see src/gan/schedule.py)."""
        if averages_ema(step):
            self.gan.EMA()
        if resets_ema(step):
            self.gan.reset_parameter_averaging()

    def _average_or_raise(self, optimizer: torch.optim.Optimizer, failure: str | None) -> None:
        """Averages gradients over ranks; raises on every rank if any rank's loss was not finite."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if average_gradients(params, self.ranks, failed=failure is not None):
            raise NonFiniteLoss(failure or "a loss on another training process is not finite")

    def state(self, step: int, record: TrainingRecord) -> dict[str, Any]:
        """Everything to resume exactly; collective with several ranks (each adds its RNG and data order)."""
        own = {"rng": rng_state(), "bank": self.bank.state_dict()}
        others = gather(own, self.ranks)[1:]
        if self.ranks.distributed:
            checksums = gather(weights_checksum(self.gan), self.ranks)
            if len(set(checksums)) > 1:
                raise RuntimeError(
                    f"training processes hold different weights at step {step} (checksums "
                    f"{checksums}): this is a bug in gradient averaging; resume from the last checkpoint"
                )
        return {
            "step": step,
            "gan": self.gan.state_dict(),
            "G_opt": self.gan.G_opt.state_dict(),
            "D_opt": self.gan.D_opt.state_dict(),
            "G_scaler": self.g_scaler.state_dict(),
            "D_scaler": self.d_scaler.state_dict(),
            "bank": own["bank"],
            "rng": own["rng"],
            "world_size": self.ranks.world_size,
            "other_ranks": others,
            "history": record.history,
            "frames": record.frames,
        }

    def load_state(self, saved: dict[str, Any]) -> None:
        self.gan.load_state_dict(saved["gan"])
        self.gan.G_opt.load_state_dict(saved["G_opt"])
        self.gan.D_opt.load_state_dict(saved["D_opt"])
        if saved["G_scaler"]:
            self.g_scaler.load_state_dict(saved["G_scaler"])
        if saved["D_scaler"]:
            self.d_scaler.load_state_dict(saved["D_scaler"])
        rank = self.ranks.rank
        if saved.get("world_size", 1) == self.ranks.world_size:
            own = saved if rank == 0 else saved["other_ranks"][rank - 1]
            self.bank.load_state_dict(own["bank"])
            restore_rng_state(own["rng"])
            return
        log.warning(
            "checkpoint was written by %d training processes, this run has %d: weights and "
            "optimizers resume exactly, data order and random streams start afresh",
            saved.get("world_size", 1),
            self.ranks.world_size,
        )
        self.bank.load_state_dict(saved["bank"])
        self.bank.start_new_epoch()
        _seed_rank(self.config.seed, self.ranks, int(saved["step"]), attempt=0)


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """No weight gradients for `module` inside the block; gradients still flow through it.

    Upstream computes the discriminator's weight gradients in the generator step
    and throws them away at the next `zero_grad`; skipping them is the same update.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """On a CPU, treat denormal floats as zero while training (about 8% faster steps here).

    Values below ~1e-38 carry nothing a GAN needs; CUDA kernels flush them already.
    """
    enabled = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            torch.set_flush_denormal(False)


def _safe_inverse(value: float) -> float:
    return 1.0 / value if value else float("inf")


def train_gan(
    data_dir: Path,
    model_dir: Path,
    config: TrainConfig,
    *,
    device: str = "auto",
    world_size: int | None = None,
    on_step: Callable[[int, StepLosses], None] | None = None,
    checkpoint_root: str = "",
) -> TrainResult:
    """Trains until `config.steps`, resuming from `model_dir/checkpoint.pt` when present.

    `world_size` processes train data-parallel (default: one per visible CUDA
    device, else one); each takes `config.batch_size` images per micro-batch.
    With `checkpoint_root` (gs://... or a folder), every checkpoint is also copied
    there, and an empty `model_dir` first fetches the copy: a retried or resumed
    attempt continues where the last one saved.
    """
    config.validate()
    torch_device = pick_device(device)
    resolve_amp(config.amp, torch_device)
    if checkpoint_root:
        CheckpointMirror(checkpoint_root).fetch(model_dir, CHECKPOINT_NAME)
    if world_size is None:
        world_size = default_world_size(torch_device)
    if world_size < 1:
        raise ConfigError(f"world_size={world_size}: use 1 or more training processes")
    if world_size == 1:
        return _train_process(
            SINGLE, torch_device, data_dir, model_dir, config, on_step, checkpoint_root
        )
    if torch_device.type == "cuda" and world_size > torch.cuda.device_count():
        raise ConfigError(
            f"world_size={world_size} but only {torch.cuda.device_count()} CUDA devices are "
            "visible: request that many GPUs for the task or lower world_size"
        )
    log.info(
        "training on %d processes (%s), gradients averaged each step", world_size, torch_device.type
    )
    return run_on_ranks(
        world_size,
        torch_device.type,
        _train_process,
        data_dir,
        model_dir,
        config,
        None,
        checkpoint_root,
    )


def default_world_size(device: torch.device) -> int:
    """One process per visible GPU when training on CUDA without a device index, else one."""
    if device.type == "cuda" and device.index is None:
        return max(1, torch.cuda.device_count())
    return 1


def _train_process(
    ranks: Ranks,
    device: torch.device,
    data_dir: Path,
    model_dir: Path,
    config: TrainConfig,
    on_step: Callable[[int, StepLosses], None] | None,
    checkpoint_root: str = "",
) -> TrainResult:
    """One training process: rank 0 logs, checkpoints and exports; all ranks step together."""
    if not ranks.is_main:
        logging.getLogger("src").setLevel(logging.WARNING)
    amp_dtype = resolve_amp(config.amp, device)
    images = load_image_folder(data_dir, config.channels, config.image_size)
    checks.require(
        checks.enough_images_problem(
            len(images) // ranks.world_size, config.batch_size, ranks.world_size
        )
    )
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    gan = build_gan(config, device)
    broadcast_parameters(gan, ranks)
    bank = ImageBank(images, config.seed, device, ranks.rank, ranks.world_size)
    aug_prob = config.aug_probability(len(bank))
    if ranks.rank > 0:  # rank 0 keeps the single-process streams
        _seed_rank(config.seed, ranks, step=0, attempt=0)
    runner = StepRunner(gan, bank, config, device, amp_dtype, aug_prob, ranks)
    if checkpoint_root and ranks.is_main:
        runner.mirror = CheckpointMirror(checkpoint_root)
    amp_name = "off" if amp_dtype is None else str(amp_dtype).removeprefix("torch.")

    record = TrainingRecord(model_dir, config.seed, config.latent_dim, aug_prob, ranks.is_main)
    saved = load_checkpoint(model_dir, map_location=device)
    start_step = 0
    if saved is not None:
        check_compatible(saved, config, model_dir / CHECKPOINT_NAME)
        runner.load_state(saved)
        start_step = int(saved["step"])
        log.info("resuming from step %d (checkpoint in %s)", start_step, model_dir)
    record.start(saved, start_step)
    if saved is None:
        _save(runner, record, model_dir, config, 0)
    log.info(
        "training %d images at %dpx on %s (amp %s, aug_prob %.2f), steps %d -> %d",
        len(bank),
        config.image_size,
        device if not ranks.distributed else f"{ranks.world_size} x {device.type}",
        amp_name,
        aug_prob,
        start_step,
        config.steps,
    )

    started = time.monotonic()
    with flush_denormals(device):
        step, last, nan_restarts = _train_loop(
            runner, record, model_dir, config, start_step, started, on_step
        )
    seconds = time.monotonic() - started
    record.finish()
    history = record.history

    # A resumed run with no steps left reports the losses its history ends with.
    final = (last.d_loss, last.g_loss) if last else None
    if final is None and history:
        final = (history[-1]["d_loss"], history[-1]["g_loss"])
    if ranks.is_main:
        export_upstream(
            model_dir,
            gan.state_dict(),
            config,
            step,
            {"G": runner.g_scaler.state_dict(), "D": runner.d_scaler.state_dict()},
        )
    return TrainResult(
        start_step=start_step,
        end_step=step,
        seconds=seconds,
        data_seconds=runner.data_seconds,
        device=str(device),
        amp=amp_name,
        image_count=len(bank),
        aug_prob=aug_prob,
        nan_restarts=nan_restarts,
        final_d_loss=final[0] if final else None,
        final_g_loss=final[1] if final else None,
        world_size=ranks.world_size,
        history=history,
        frames=record.frames,
    )


def _seed_rank(seed: int, ranks: Ranks, step: int, attempt: int) -> None:
    """Fresh random streams per rank, step and attempt (latents and augmentations).

    After a NaN restart the restored RNG would replay the failing step, so the
    attempt shifts it.
    """
    shifted = seed * 1_000_003 + step * 101 + attempt + ranks.rank * 7_919
    torch.manual_seed(shifted)
    random.seed(shifted)


def _save(
    runner: StepRunner, record: TrainingRecord, model_dir: Path, config: TrainConfig, step: int
) -> None:
    record.snapshot(runner.gan, step)
    state = runner.state(step, record)  # collective: every rank takes part
    if runner.ranks.is_main:
        save_checkpoint(model_dir, state, config)
        if runner.mirror is not None:
            runner.mirror.push(model_dir, CHECKPOINT_NAME)


def _train_loop(
    runner: StepRunner,
    record: TrainingRecord,
    model_dir: Path,
    config: TrainConfig,
    start_step: int,
    started: float,
    on_step: Callable[[int, StepLosses], None] | None,
) -> tuple[int, StepLosses | None, int]:
    """Steps until `config.steps`, logging, checkpointing and recovering from NaN."""
    step, restarts_in_row, nan_restarts = start_step, 0, 0
    last: StepLosses | None = None
    rate = MovingRate()
    while step < config.steps:
        try:
            losses = runner.step(step)
        except NonFiniteLoss as error:
            restarts_in_row += 1
            nan_restarts += 1
            if restarts_in_row > config.max_nan_restarts:
                raise TrainingDiverged(
                    f"losses stayed non-finite after {config.max_nan_restarts} restarts at step "
                    f"{step} ({error}): lower learning_rate (now {config.learning_rate}), enable amp='off', or check the data"
                ) from error
            step = _restart_from_checkpoint(runner, model_dir, config, restarts_in_row, error)
            record.rewind(step)
            continue
        restarts_in_row = 0
        last = losses
        step += 1
        if on_step is not None:
            on_step(step, losses)
        rate.update(step)
        if runner.ranks.is_main:
            record.add(losses.tensors)
            if step % config.log_every == 0 or step == config.steps:
                row = record.close_interval(step, rate, time.monotonic() - started)
                _log_step(row, config.steps, rate)
        if step % config.save_every == 0 or step == config.steps:
            _save(runner, record, model_dir, config, step)
    return step, last, nan_restarts


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


def _restart_from_checkpoint(
    runner: StepRunner, model_dir: Path, config: TrainConfig, attempt: int, error: Exception
) -> int:
    saved = load_checkpoint(model_dir, map_location=runner.device)
    runner.load_state(saved)
    _seed_rank(config.seed, runner.ranks, int(saved["step"]), attempt)
    log.warning(
        "%s; reloaded checkpoint at step %d (restart %d/%d)",
        error,
        saved["step"],
        attempt,
        config.max_nan_restarts,
    )
    return int(saved["step"])
