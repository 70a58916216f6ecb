"""Mixed precision on this machine: CPU autocast runs the real bf16 and fp16 step, resume and
NaN restarts; the choice for GPUs is made by compute capability (patched here)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from src.gan.config import TrainConfig
from src.gan.model_folder import load_checkpoint
from src.gan.networks.build import build_gan
from src.gan.scoring.swd import load_float_images
from src.gan.training.loop import train_gan
from src.gan.training.precision import AmpChoice, Precision, choose_amp
from src.gan.training.step import GanStep
from tests.conftest import SMOKE
from tests.support.faults import NanInjector

CUDA = torch.device("cuda", 0)


def fake_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str) -> None:
    """A GPU of `capability` as torch would describe it; asking about emulated bf16 fails."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)

    def no_emulation_question(*args, **kwargs):
        raise AssertionError("is_bf16_supported() counts emulation: decide by capability")

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_emulation_question)


@pytest.mark.parametrize(
    ("capability", "name", "expected"),
    [
        ((7, 0), "Tesla V100-SXM2-16GB", torch.float16),
        ((7, 5), "Tesla T4", torch.float16),
        ((8, 0), "NVIDIA A100-SXM4-40GB", torch.bfloat16),
        ((8, 9), "NVIDIA L4", torch.bfloat16),
        ((9, 0), "NVIDIA H100 80GB HBM3", torch.bfloat16),
    ],
)
def test_auto_amp_takes_bf16_only_where_the_gpu_computes_it_natively(
    monkeypatch, capability, name, expected
):
    fake_gpu(monkeypatch, capability, name)
    choice = choose_amp("auto", CUDA)
    assert choice.dtype is expected
    assert name in choice.reason and f"sm{capability[0]}{capability[1]}" in choice.reason


def test_explicit_bf16_on_a_t4_is_kept_but_warned_about(monkeypatch, caplog):
    fake_gpu(monkeypatch, (7, 5), "Tesla T4")
    assert choose_amp("bf16", CUDA).dtype is torch.bfloat16
    assert "emulated and slower than fp16" in caplog.text


def test_on_a_cpu_auto_is_full_precision_and_both_half_precisions_are_real_options():
    cpu = torch.device("cpu")
    assert choose_amp("auto", cpu).dtype is None
    assert choose_amp("bf16", cpu).dtype is torch.bfloat16
    assert choose_amp("fp16", cpu).dtype is torch.float16


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_half_precision_training_resumes_exactly(cleansed_sample, tmp_path, amp, caplog):
    # Given a run of 2 steps and a copy of its step-1 checkpoint resumed, both in `amp`
    caplog.set_level("INFO")
    config = replace(SMOKE, steps=2, save_every=1, amp=amp)
    (tmp_path / "resumed").mkdir()

    def keep_step_1(done: int, losses) -> None:  # before step 2 is saved, step 1's is on disk
        if done == 2:
            shutil.copy(tmp_path / "straight" / "checkpoint.pt", tmp_path / "resumed")

    straight = train_gan(cleansed_sample, tmp_path / "straight", config, on_step=keep_step_1)
    resumed = train_gan(cleansed_sample, tmp_path / "resumed", config)
    # Then both trained in that precision, said so, and ended with the same weights and scalers
    assert (straight.amp, resumed.amp, resumed.start_step) == (amp, amp, 1)
    assert straight.amp_reason == f"amp='{amp}' on cpu (CPU autocast)"
    assert straight.amp_reason in caplog.text
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert all(torch.equal(a["gan"][key], b["gan"][key]) for key in a["gan"])
    assert straight.final_d_loss == resumed.final_d_loss
    assert a["D_scaler"] == b["D_scaler"]
    assert bool(a["D_scaler"]) is (amp == "fp16")  # only fp16 scales its losses


def penalty_at_step_0(cleansed_sample, amp: str) -> float | None:
    """The gradient penalty of one real step 0 from fixed weights and batch, in `amp`."""
    config = TrainConfig(image_size=32, batch_size=2, latent_dim=32, fmap_max=16, aug_prob=0.0)
    torch.manual_seed(3)
    gan = build_gan(config, torch.device("cpu"))
    batch = load_float_images(cleansed_sample, 3, 32, limit=2)
    precision = Precision(choose_amp(amp, torch.device("cpu")), torch.device("cpu"))

    class SameBatch:
        def next_batch(self, size: int) -> torch.Tensor:
            return batch.clone()

    torch.manual_seed(4)
    return GanStep(gan, SameBatch(), config, precision, 0.0)(0).gp


def test_fp16_applies_the_gradient_penalty_at_the_scalers_initial_scale(cleansed_sample):
    # Upstream takes the penalty's gradients of outputs times the scale (65,536), which
    # overflows fp16: the penalty came out infinite or NaN and was dropped.
    full = penalty_at_step_0(cleansed_sample, "off")
    half = penalty_at_step_0(cleansed_sample, "fp16")
    assert full is not None and full > 0
    assert half is not None and half == pytest.approx(full, rel=0.05)


def test_a_nan_restart_in_fp16_keeps_the_scalers_backoff(cleansed_sample, tmp_path, monkeypatch):
    # Given an fp16 run whose discriminator output turns NaN in step 2, just after its scalers
    # backed off to 1024 (the step-1 checkpoint holds the initial 65,536)
    injector = NanInjector(monkeypatch)

    def back_off() -> None:
        for scaler in injector.steps[0].precision.scalers.values():
            scaler.update(new_scale=1024.0)

    injector.on_poison = back_off
    config = replace(SMOKE, steps=2, save_every=1, amp="fp16")
    # When it restarts from the checkpoint and finishes
    result = train_gan(cleansed_sample, tmp_path / "m", config, on_step=injector.arm_after(1))
    # Then the restart reloaded the weights but kept the scalers' own, lower scale
    assert result.nan_restarts == 1
    saved = load_checkpoint(tmp_path / "m")
    assert saved["D_scaler"]["scale"] == 1024.0 and saved["G_scaler"]["scale"] == 1024.0


def test_an_unscaled_run_reports_no_scale():
    precision = Precision(AmpChoice(None, "off"), torch.device("cpu"))
    assert precision.scale("D") == 1.0 and precision.state_dict() == {
        "D_scaler": {},
        "G_scaler": {},
    }
