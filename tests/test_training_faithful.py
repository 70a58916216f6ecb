"""One D and one G step equal upstream's `Trainer.train()` from identical weights, batch and RNG."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from src.gan.config import TrainConfig
from src.gan.networks.build import build_gan
from src.gan.scoring.swd import load_float_images
from src.gan.training.precision import AmpChoice, Precision
from src.gan.training.step import GanStep
from tests.support.gradient_capture import capture_gradients

SEED = 1234


class FixedBatches:
    """Serves the same batch every time, like the oracle's loader."""

    def __init__(self, batch: torch.Tensor) -> None:
        self.batch = batch

    def next_batch(self, batch_size: int) -> torch.Tensor:
        return self.batch.clone()


def trainer_kwargs(config: TrainConfig) -> dict:
    return {
        "image_size": config.image_size, "latent_dim": config.latent_dim, "fmap_max": config.fmap_max,
        "batch_size": config.batch_size, "gradient_accumulate_every": config.gradient_accumulate_every,
        "attn_res_layers": list(config.attn_res_layers), "disc_output_size": config.disc_output_size,
        "dual_contrast_loss": config.dual_contrast_loss, "antialias": config.antialias,
        "aug_prob": config.aug_prob, "aug_types": list(config.aug_types), "lr": config.learning_rate,
        "gp_weight": config.gp_weight,
    }  # fmt: skip


CASES = [
    (0, {}),  # gradient-penalty step
    (1, {}),
    (1, {"dual_contrast_loss": True}),
    (2, {"antialias": True, "attn_res_layers": (16,), "gradient_accumulate_every": 2}),
]


def case_config(changes: dict) -> TrainConfig:
    base = TrainConfig(
        image_size=32,
        batch_size=2,
        latent_dim=32,
        fmap_max=16,
        aug_prob=0.5,
        aug_types=("translation", "cutout", "color"),
    )
    return replace(base, **changes)


def seeded_gan(config: TrainConfig):
    torch.manual_seed(7)
    return build_gan(config, torch.device("cpu"))


@pytest.fixture(scope="module")
def upstream_steps(cleansed_sample, tmp_path_factory) -> list[dict]:
    """What upstream's Trainer did in each case: one process of its own takes every case's step."""
    folder, paths = tmp_path_factory.mktemp("oracle"), []
    batch = load_float_images(cleansed_sample, 3, 32, limit=2)
    for index, (step, changes) in enumerate(CASES):
        config = case_config(changes)
        payload = {
            "config": trainer_kwargs(config),
            "init_state": seeded_gan(config).state_dict(),
            "batch": batch,
            "seed": SEED,
            "step": step,
        }
        torch.save(payload, folder / f"in{index}.pt")
        paths += [str(folder / f"in{index}.pt"), str(folder / f"out{index}.pt")]
    oracle = subprocess.run(
        [sys.executable, "-m", "tests.support.upstream_oracle", *paths],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert oracle.returncode == 0, oracle.stderr[-3000:]
    return [torch.load(path, weights_only=True) for path in paths[1::2]]


@pytest.mark.parametrize(("step", "changes"), CASES)
def test_step_matches_upstream_trainer(cleansed_sample, upstream_steps, step, changes):
    # Given identical initial weights, batch, seed and settings
    config = case_config(changes)
    gan = seeded_gan(config)
    batch = load_float_images(cleansed_sample, 3, 32, limit=2)
    # When upstream's Trainer (in its own process) and our GanStep each take one step
    expected = upstream_steps[CASES.index((step, changes))]
    full_precision = Precision(AmpChoice(None, "off"), torch.device("cpu"))
    runner = GanStep(gan, FixedBatches(batch), config, full_precision, config.aug_prob)
    gradients = capture_gradients(gan)
    torch.manual_seed(SEED)
    random.seed(SEED)
    losses = runner(step)
    # Then the losses and the updated weights agree
    assert losses.d_loss == pytest.approx(expected["d_loss"], rel=1e-5, abs=1e-6)
    assert losses.g_loss == pytest.approx(expected["g_loss"], rel=1e-5, abs=1e-6)
    if step % 4 == 0:
        assert expected["gp"] is not None and losses.gp == pytest.approx(expected["gp"], rel=1e-4)
    # and every optimizer stepped with the same gradients, to float rounding (the attention
    # layout sums in another order; 5e-7 of the network's largest gradient covers it)
    assert gradients.keys() == expected["gradients"].keys()
    largest = {
        net: max(g.abs().max() for k, g in expected["gradients"].items() if k.startswith(net))
        for net in ("G.", "D.")
    }
    atol = {
        name: max(1e-5 * theirs.abs().max(), 5e-7 * largest[name[:2]])
        for name, theirs in expected["gradients"].items()
    }
    different = [
        name
        for name, theirs in expected["gradients"].items()
        if not torch.allclose(gradients[name], theirs, rtol=1e-3, atol=atol[name])
    ]
    assert different == []
    # and the updated weights agree, except where the gradient is indistinguishable from zero
    ours = gan.state_dict()
    mismatched = []
    for key, theirs in expected["state"].items():
        # D_aug.D.* are the parameters D.*; GE.* is a copy of G.* (reset at step % 1000 == 2)
        name = key.removeprefix("D_aug.").replace("GE.", "G.", 1)
        if not _same_update(
            ours[key], theirs, expected["gradients"].get(name), atol.get(name), config.learning_rate
        ):
            mismatched.append(key)
    assert mismatched == []


def _same_update(
    ours: torch.Tensor,
    theirs: torch.Tensor,
    grad: torch.Tensor | None,
    atol: float | None,
    lr: float,
) -> bool:
    """Equal to rtol 1e-4, except elements whose gradient is within rounding of zero.

    Adam's first update is lr * g / (|g| + eps), about lr * sign(g): where the
    exact gradient is 0 (a conv bias feeding a BatchNorm, a logit shift the
    contrastive loss ignores), the sign of the rounding noise decides it, and
    summing in another order may flip it. Those elements may differ by one
    step each way, 2 * lr, and no more.
    """
    close = torch.isclose(ours.float(), theirs.float(), rtol=1e-4, atol=1e-6)
    if grad is None or bool(close.all()):
        return bool(close.all())
    noise = grad.abs() <= atol
    within_a_step = (ours.float() - theirs.float()).abs() <= 2 * lr * 1.01
    return bool((close | (noise & within_a_step)).all())
