"""Training: exact resume, preemption, NaN recovery, safe loading, upstream export."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from src.common.atomic_files import TEMPORARY_MARK
from src.common.stale_files import OWNER_MARK
from src.gan.model_folder import CheckpointError, load_checkpoint
from src.gan.training.loop import TrainingDiverged, train_gan
from tests.conftest import SMOKE
from tests.support.faults import NanInjector


def gan_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(model_dir)["gan"]


def test_resumed_training_equals_uninterrupted_training(cleansed_sample, tmp_path):
    config = replace(SMOKE, steps=4, save_every=2)
    straight = train_gan(cleansed_sample, tmp_path / "straight", config)
    first_half = train_gan(cleansed_sample, tmp_path / "resumed", replace(config, steps=2))
    second_half = train_gan(cleansed_sample, tmp_path / "resumed", config)
    assert (straight.start_step, first_half.end_step, second_half.start_step) == (0, 2, 2)
    a, b = gan_weights(tmp_path / "straight"), gan_weights(tmp_path / "resumed")
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert straight.final_d_loss == second_half.final_d_loss


def test_killed_training_resumes_from_its_last_checkpoint_and_left_no_temporary_folder(
    cleansed_sample, tmp_path
):
    model_dir, scratch = tmp_path / "model", tmp_path / "tmp"
    scratch.mkdir()
    code = (
        "import sys; from pathlib import Path; from dataclasses import replace;"
        "from tests.conftest import SMOKE; from src.gan.training.loop import train_gan;"
        "train_gan(Path(sys.argv[1]), Path(sys.argv[2]), replace(SMOKE, steps=50, save_every=1))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(cleansed_sample), str(model_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            saved = load_checkpoint(model_dir) if (model_dir / "checkpoint.pt").exists() else None
            if saved and saved["step"] >= 2:
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = load_checkpoint(model_dir)["step"]
    assert killed_at >= 2, "training never wrote a checkpoint"
    assert (
        list(scratch.glob("resume-from-*")) == []
    )  # without resume_from there is nothing to fetch
    result = train_gan(
        cleansed_sample, model_dir, replace(SMOKE, steps=killed_at + 1, save_every=1)
    )
    assert result.start_step == killed_at
    assert result.end_step == killed_at + 1


def test_a_nan_loss_in_the_real_step_reloads_the_checkpoint_and_goes_on(
    cleansed_sample, tmp_path, monkeypatch
):
    # Given a run whose discriminator output turns NaN once, in step 3 (not a penalty step)
    injector = NanInjector(monkeypatch)
    config = replace(SMOKE, steps=4, save_every=2)
    # When it trains
    result = train_gan(cleansed_sample, tmp_path / "m", config, on_step=injector.arm_after(3))
    # Then it went back to the step-2 checkpoint once and finished with finite weights
    assert (result.nan_restarts, result.end_step) == (1, 4)
    weights = gan_weights(tmp_path / "m")
    assert all(
        torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()
    )


def test_a_loss_that_stays_nan_stops_with_a_clear_error(cleansed_sample, tmp_path, monkeypatch):
    injector = NanInjector(monkeypatch)
    with pytest.raises(TrainingDiverged, match=r"after 2 restarts.*lower learning_rate"):
        train_gan(
            cleansed_sample,
            tmp_path / "m",
            replace(SMOKE, steps=3, max_nan_restarts=2),
            on_step=injector.arm_after(1, calls=10**6),
        )


def test_checkpoint_of_another_architecture_is_refused_naming_the_difference(
    trained_model, cleansed_sample, tmp_path
):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(trained_model, copy)
    with pytest.raises(CheckpointError, match="fmap_max: saved 16 vs requested 32"):
        train_gan(cleansed_sample, copy, replace(SMOKE, fmap_max=32, steps=3))


def test_failed_save_leaves_the_previous_checkpoint_intact(trained_model, tmp_path, monkeypatch):
    import shutil

    from src.gan.training import checkpoints as gan_checkpoint

    copy = tmp_path / "m"
    shutil.copytree(trained_model, copy)
    before = (copy / "checkpoint.pt").read_bytes()

    def broken_save(payload, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(gan_checkpoint.torch, "save", broken_save)
    saved = load_checkpoint(copy)
    with pytest.raises(OSError, match="disk full"):
        gan_checkpoint.save_checkpoint(copy, {k: saved[k] for k in ("step", "gan")}, SMOKE)
    assert (copy / "checkpoint.pt").read_bytes() == before
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in trained_model.iterdir())


def test_checkpoint_holds_everything_needed_to_resume(trained_model):
    saved = load_checkpoint(trained_model)
    for key in (
        "gan",
        "G_opt",
        "D_opt",
        "G_scaler",
        "D_scaler",
        "step",
        "rng",
        "bank",
        "config",
        "versions",
    ):
        assert key in saved
    assert saved["config"]["fmap_max"] == 16
    assert saved["versions"]["lightweight-gan"] == "1.2.1"
    assert saved["G_opt"]["state"], "Adam moments must be saved"


def test_export_loads_in_upstreams_own_trainer_and_generates(trained_model, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.upstream_generate", str(trained_model / "upstream"), SMOKE.name, str(SMOKE.latent_dim), str(tmp_path / "results")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "files=6" in result.stdout  # 3 raw + 3 EMA images


def test_a_resume_removes_the_half_written_checkpoints_of_killed_saves(
    trained_model, cleansed_sample, tmp_path
):
    import shutil

    # Given a model folder and a local mirror holding what saves killed mid-write leave
    model_dir, mirror = tmp_path / "m", tmp_path / "mirror"
    shutil.copytree(trained_model, model_dir)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = [
        model_dir / f".checkpoint.pt{TEMPORARY_MARK}{dead.pid}",
        mirror / f".checkpoint.pt{TEMPORARY_MARK}{dead.pid}",
    ]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1024)
    (mirror / OWNER_MARK).touch()  # the killed attempt had claimed the mirror
    # When training resumes there, then they are gone and the checkpoint itself is not
    train_gan(cleansed_sample, model_dir, replace(SMOKE, steps=3), checkpoint_root=str(mirror))
    assert not any(path.exists() for path in left)
    assert load_checkpoint(model_dir)["step"] == 3


def test_a_checkpoint_root_holding_other_files_is_refused_and_left_alone(cleansed_sample, tmp_path):
    # Given a folder of someone's files, one of them named like a killed writer's temporary
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "home"
    folder.mkdir()
    decoys = {folder / f".precious.db.tmp-{dead.pid}": b"db", folder / "notes.txt": b"notes"}
    for path, data in decoys.items():
        path.write_bytes(data)
    # When a run names it as its checkpoint root
    with pytest.raises(CheckpointError) as refused:
        train_gan(
            cleansed_sample, tmp_path / "m", replace(SMOKE, steps=1), checkpoint_root=str(folder)
        )
    # Then it is refused, naming the folder and the fix, and nothing there changed
    assert f"checkpoint_root={str(folder)!r} holds other files" in str(refused.value)
    assert "pass a new or empty folder" in str(refused.value)
    assert {p: p.read_bytes() for p in folder.iterdir()} == decoys
    assert not (tmp_path / "m" / "checkpoint.pt").exists()


def test_a_checkpoint_root_reused_on_other_images_is_refused_before_training(
    cleansed_sample, tmp_path
):

    # Given a model trained on the sample, its checkpoint mirrored to a root
    root = str(tmp_path / "ck")
    train_gan(cleansed_sample, tmp_path / "a", replace(SMOKE, steps=1), checkpoint_root=root)
    # and another, smaller set of images
    other = other_images(tmp_path)
    # When a run on the other set reuses the root, then it stops before training, naming both
    with pytest.raises(CheckpointError) as refused:
        train_gan(other, tmp_path / "b", replace(SMOKE, steps=2), checkpoint_root=root)
    message = str(refused.value)
    assert "was trained on other images than this run's" in message
    assert "(96 images of 32x32x3" in message and "(20 images of 32x32x3" in message
    assert "use a fresh checkpoint_root" in message
    assert not (tmp_path / "b" / "progress").exists()  # nothing was trained


def test_resume_from_fine_tunes_a_trained_model_on_other_images(cleansed_sample, tmp_path, caplog):

    # Given a model trained on the sample, and a smaller set of other images
    train_gan(cleansed_sample, tmp_path / "a", replace(SMOKE, steps=2))
    other = other_images(tmp_path)
    # When a new run on them starts from that model's checkpoint, as a choice
    caplog.set_level("INFO")
    start = str(tmp_path / "a" / "checkpoint.pt")
    result = train_gan(other, tmp_path / "b", replace(SMOKE, steps=3), resume_from=start)
    # Then it continues the model's weights and steps, now bound to the new images
    assert (result.start_step, result.end_step) == (2, 3)
    assert "fine-tuning the model of" in caplog.text and "(20 images of 32x32x3" in caplog.text
    saved = load_checkpoint(tmp_path / "b")
    assert saved["data"]["shape"][0] == 20
    # and a second attempt of that run resumes its own checkpoint, not the starting one
    again = train_gan(other, tmp_path / "b", replace(SMOKE, steps=3), resume_from=start)
    assert again.start_step == 3


def test_a_retry_with_nothing_left_to_train_still_fills_its_new_model_folder(
    cleansed_sample, tmp_path
):
    # Given a finished run whose checkpoint is in its mirror
    root = str(tmp_path / "ck")
    train_gan(cleansed_sample, tmp_path / "first", replace(SMOKE, steps=2), checkpoint_root=root)
    # When a retry starts in an empty folder with no steps left
    result = train_gan(
        cleansed_sample, tmp_path / "retry", replace(SMOKE, steps=2), checkpoint_root=root
    )
    # Then the folder holds what the generate step reads, as after training
    assert (result.start_step, result.end_step) == (2, 2)
    assert {"checkpoint.pt", "model_config.json", "upstream"} <= {
        p.name for p in (tmp_path / "retry").iterdir()
    }


def other_images(tmp_path: Path) -> Path:
    """20 of the sample's digits, cleansed: a set other than the one the models trained on."""
    from src.backends.sample import SAMPLE_DIR
    from src.data.cleanse import CleanseSettings, cleanse_folder

    subset = tmp_path / "subset"
    subset.mkdir()
    for path in sorted(SAMPLE_DIR.glob("digit_0[0-1]*.png")):
        shutil.copy(path, subset / path.name)
    cleanse_folder(subset, tmp_path / "other", CleanseSettings(image_size=32, workers=1))
    return tmp_path / "other"
