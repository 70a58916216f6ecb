"""One training step of upstream's `Trainer.train` (lightweight_gan.py 1.2.1, lines 1197-1390).

Hinge (or dual contrastive) loss on the discriminator's main and 32x32 outputs,
its reconstruction loss, a gradient penalty every 4th step, the same augmentation
and EMA schedule (src/gan/networks/schedule.py), on any device and precision
(`Precision` owns autocast and the scalers, so the maths here never branches on
the dtype). With several processes the gradients are averaged before each
optimizer step (`average_gradients`, a collective every rank reaches).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch
from torch.autograd import grad as torch_grad

from src.gan.config import TrainConfig
from src.gan.networks.schedule import applies_gradient_penalty, averages_ema, resets_ema
from src.gan.networks.upstream import upstream
from src.gan.training.image_bank import ImageBank
from src.gan.training.precision import Precision
from src.gan.training.ranks import SINGLE, Ranks, average_gradients


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite in this step (on this or another process)."""


class StepLosses:
    """One step's losses, kept on the device until someone reads them (no host sync per step)."""

    def __init__(
        self,
        d_loss: torch.Tensor,
        g_loss: torch.Tensor,
        gp: torch.Tensor | None,
        aux: torch.Tensor,
        gp_skipped: bool = False,
    ) -> None:
        self._values = (d_loss, g_loss, gp, aux)
        self.gp_skipped = gp_skipped

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


class GanStep:
    """Runs training steps exactly as upstream's Trainer does, on any device and precision."""

    def __init__(
        self,
        gan: torch.nn.Module,
        bank: ImageBank,
        config: TrainConfig,
        precision: Precision,
        aug_prob: float,
        ranks: Ranks = SINGLE,
    ) -> None:
        self.gan, self.bank, self.config = gan, bank, config
        self.precision, self.ranks = precision, ranks
        self.device = precision.device
        self.aug_kwargs = {"prob": aug_prob, "types": list(config.aug_types)}
        self.data_seconds = 0.0
        module = upstream()
        self.d_loss_fn = (
            module.dual_contrastive_loss if config.dual_contrast_loss else module.hinge_loss
        )
        self.g_loss_fn = (
            module.dual_contrastive_loss if config.dual_contrast_loss else module.gen_hinge_loss
        )

    def __call__(self, step: int) -> StepLosses:
        """One discriminator and one generator update; `step` is upstream's `self.steps`."""
        self.gan.train()
        d_loss, gp, aux, gp_skipped = self.discriminator_update(applies_gradient_penalty(step))
        g_loss = self.generator_update()
        self.ema_update(step)
        return StepLosses(d_loss, g_loss, gp, aux, gp_skipped)

    def _batch(self) -> torch.Tensor:
        started = time.perf_counter()
        batch = self.bank.next_batch(self.config.batch_size)
        self.data_seconds += time.perf_counter() - started
        return batch

    def _latents(self) -> torch.Tensor:
        # Drawn on the CPU like upstream's `torch.randn(...).cuda()`: the same stream on any device.
        return torch.randn(self.config.batch_size, self.config.latent_dim).to(self.device)

    def discriminator_update(
        self, apply_gp: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, bool]:
        """D's update over the accumulated micro-batches: (divergence, last penalty, aux, skipped)."""
        accumulate = self.config.gradient_accumulate_every
        total, last_gp, skipped, failure = torch.zeros([], device=self.device), None, False, None
        self.gan.D_opt.zero_grad()
        for _ in range(accumulate):
            loss, divergence, gp, aux = self._discriminator_loss(apply_gp)
            skipped = skipped or (apply_gp and gp is None)
            last_gp = gp if gp is not None else last_gp
            if not torch.isfinite(loss).all():
                failure = failure or f"discriminator loss is {loss.item()}"
                continue
            self.precision.backward(loss, "D")
            total += divergence.detach()
        self._average_or_raise(self.gan.D_opt, failure)
        self.precision.step(self.gan.D_opt, "D")
        return total / accumulate, last_gp, aux.detach(), skipped

    def _discriminator_loss(
        self, apply_gp: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One micro-batch: (loss to back-propagate, divergence, penalty or None, aux loss)."""
        gan = self.gan
        latents, image_batch = self._latents(), self._batch()
        with self.precision.autocast():
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
            loss = divergence + self.d_loss_fn(real_32, fake_32) + real_aux
        gp = None
        if apply_gp:
            gp = self.gradient_penalty(
                (real_output, real_32), image_batch, (fake_output, fake_32), generated
            )
            if gp is not None:
                loss, gp = loss + gp, gp.detach()
        return loss / self.config.gradient_accumulate_every, divergence, gp, real_aux

    def gradient_penalty(
        self,
        real_outputs: tuple[torch.Tensor, ...],
        real_images: torch.Tensor,
        fake_outputs: tuple[torch.Tensor, ...],
        fake_images: torch.Tensor,
    ) -> torch.Tensor | None:
        """gp_weight x mean squared norm of D's input gradients, real and fake (upstream's R1 form).

        The gradients are taken of the unscaled outputs and the norm in fp32, so the
        penalty never passes through the fp16 loss scale: upstream multiplies the
        outputs by the scaler's scale first, which overflows fp16 at the initial
        scale (65,536) and silently drops the penalty. None when it is not finite:
        the caller counts the skip.
        """
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
        gradients = torch.cat(grads).float().reshape(2 * self.config.batch_size, -1)
        gp = self.config.gp_weight * (gradients.norm(2, dim=1) ** 2).mean()
        return gp if torch.isfinite(gp) else None

    def generator_update(self) -> torch.Tensor:
        """G's update over the accumulated micro-batches against a frozen D."""
        accumulate = self.config.gradient_accumulate_every
        total, failure = torch.zeros([], device=self.device), None
        self.gan.G_opt.zero_grad()
        for _ in range(accumulate):
            loss, divergence = self._generator_loss()
            if not torch.isfinite(loss).all():
                failure = failure or f"generator loss is {loss.item()}"
                continue
            self.precision.backward(loss, "G")
            total += divergence.detach()
        self._average_or_raise(self.gan.G_opt, failure)
        self.precision.step(self.gan.G_opt, "G")
        return total / accumulate

    def _generator_loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One micro-batch: (loss to back-propagate, G's divergence on the main output)."""
        gan, dual = self.gan, self.config.dual_contrast_loss
        latents = self._latents()
        if dual:
            image_batch = self._batch()
            image_batch.requires_grad_()
        with self.precision.autocast(), frozen(gan.D):
            generated = gan.G(latents)
            fake_output, fake_32, _ = gan.D_aug(generated, **self.aug_kwargs)
            real_output, real_32 = None, None
            if dual:
                real_output, real_32, _ = gan.D_aug(image_batch, **self.aug_kwargs)
            divergence = self.g_loss_fn(fake_output, real_output)
            loss = (
                divergence + self.g_loss_fn(fake_32, real_32)
            ) / self.config.gradient_accumulate_every
        return loss, divergence

    def ema_update(self, step: int) -> None:
        """Upstream's EMA schedule for GE (see src/gan/networks/schedule.py)."""
        if averages_ema(step):
            self.gan.EMA()
        if resets_ema(step):
            self.gan.reset_parameter_averaging()

    def _average_or_raise(self, optimizer: torch.optim.Optimizer, failure: str | None) -> None:
        """Averages gradients over ranks (collective); raises on every rank if any rank failed."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if average_gradients(params, self.ranks, failed=failure is not None):
            raise NonFiniteLoss(failure or "a loss on another training process is not finite")


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
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
