"""What a person watches: progress frames, interval means, TensorBoard, the pages."""

from __future__ import annotations

import base64
import html
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.cleanse import CleanseSettings, cleanse_folder, folder_inputs
from src.data.contact_sheet import contact_sheet_html
from src.gan.config import TrainConfig
from src.gan.sampling.gallery import gallery_html
from src.gan.sampling.generate import generate_images
from src.gan.sampling.render import encode
from src.gan.scoring.swd import load_pair, swd_with_references
from src.gan.training.checkpoint_mirror import CheckpointMirror
from src.gan.training.live_sync import LiveSync
from src.gan.training.loop import train_gan
from src.gan.watching.progress_frames import ANIMATION, FOLDER
from src.gan.watching.tensorboard_log import FOLDER as BOARD
from src.gan.watching.training_page import ticks, training_report_html
from tests.conftest import SMOKE

ROOT = Path(__file__).resolve().parents[1]
WATCHED = replace(SMOKE, steps=8, save_every=2, log_every=4)


def board(model_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(model_dir / BOARD), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def straight(cleansed_sample, tmp_path_factory):
    """An uninterrupted 8-step run, recording each step's losses as the loop sees them."""
    model_dir = tmp_path_factory.mktemp("straight")
    seen = []
    result = train_gan(
        cleansed_sample,
        model_dir,
        WATCHED,
        on_step=lambda step, losses: seen.append((step, losses)),
    )
    return model_dir, result, seen


def test_a_frame_is_kept_at_every_checkpoint_and_the_animation_holds_them(straight):
    model_dir, result, _ = straight
    assert [f["step"] for f in result.frames] == [0, 2, 4, 6, 8]
    files = sorted(p.name for p in (model_dir / FOLDER).glob("step_*.png"))
    assert files == [f"step_{s:06d}.png" for s in (0, 2, 4, 6, 8)]
    with Image.open(model_dir / FOLDER / ANIMATION) as animation:
        assert animation.format == "WEBP" and animation.n_frames == 5
    # Frames are made from the same latents: they change only because the weights did.
    assert result.frames[0]["png"] != result.frames[-1]["png"]


def test_a_run_resumed_into_an_empty_folder_continues_the_same_frames_and_curves(
    cleansed_sample, straight, tmp_path
):
    straight_dir, straight_result, _ = straight
    first = tmp_path / "first"
    train_gan(cleansed_sample, first, replace(WATCHED, steps=4))
    # A retried task gets an empty folder with only the mirrored checkpoint in it.
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(first / "checkpoint.pt", second / "checkpoint.pt")
    resumed = train_gan(cleansed_sample, second, WATCHED)
    assert resumed.start_step == 4
    assert [f["png"] for f in resumed.frames] == [f["png"] for f in straight_result.frames]
    assert sorted(p.name for p in (second / FOLDER).glob("*.png")) == sorted(
        p.name for p in (straight_dir / FOLDER).glob("*.png")
    )
    events = board(second)
    assert [e.step for e in events.Scalars("loss/discriminator")] == [4, 8]
    assert [e.step for e in events.Images("samples/fixed_latents")] == [0, 2, 4, 6, 8]


def test_history_rows_are_means_over_each_logging_interval(straight):
    _, result, seen = straight
    by_step = {step: losses for step, losses in seen}
    for row in result.history:
        interval = [by_step[s] for s in range(row["step"] - WATCHED.log_every + 1, row["step"] + 1)]
        assert row["d_loss"] == pytest.approx(sum(x.d_loss for x in interval) / len(interval))
        assert row["g_loss"] == pytest.approx(sum(x.g_loss for x in interval) / len(interval))
        assert row["aux"] == pytest.approx(sum(x.aux for x in interval) / len(interval))
        penalties = [x.gp for x in interval if x.gp is not None]
        assert row["gp"] == pytest.approx(sum(penalties) / len(penalties))
        assert 0 <= row["aug_prob"] <= 1


def test_tensorboard_reads_every_scalar_and_frame(straight):
    model_dir, result, _ = straight
    events = board(model_dir)
    tags = events.Tags()
    for tag in ("loss/discriminator", "loss/generator", "loss/gradient_penalty", "loss/discriminator_aux", "augmentation/probability"):  # fmt: skip
        assert tag in tags["scalars"]
    values = [e.value for e in events.Scalars("loss/generator")]
    assert values == pytest.approx([row["g_loss"] for row in result.history])
    images = events.Images("samples/fixed_latents")
    assert [i.step for i in images] == [f["step"] for f in result.frames]
    assert images[-1].width == Image.open(model_dir / FOLDER / "step_000008.png").width


def test_ticks_are_round_and_span_the_range():
    assert ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert ticks(-3.7, 12.2) == pytest.approx([0.0, 5.0, 10.0])
    for low, high in ((0.013, 0.0171), (3, 2000), (-5.5, -1.2)):
        marks = ticks(low, high)
        assert low <= marks[0] and marks[-1] <= high and len(marks) >= 2


def test_training_page_is_self_contained_rounded_and_scales(straight):
    _, result, _ = straight
    page = training_report_html(result.history, result.frames, result.as_dict())
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no external fetches
    assert page.count("<svg viewBox=") == 3 and "width:100%" in page
    for title in ("Hinge loss", "Gradient penalty", "reconstruction loss", "Augmentation"):
        assert title in page
    assert "step 0" in page and "step 8" in page and "data:image/webp;base64," in page
    text = re.sub(r'(points|src|d)="[^"]*"', "", page)
    long = [n for n in re.findall(r"\d+\.\d+", text) if len(n.replace(".", "").lstrip("0")) > 4]
    assert not long, f"numbers with more than 4 significant digits: {long[:5]}"


def test_final_losses_are_the_interval_means_the_last_progress_line_shows(straight):
    # Given a run that logs every 4 steps, whose last step's losses differ from its interval's mean
    _, result, seen = straight
    last_step = seen[-1][1]
    assert last_step.d_loss != pytest.approx(result.history[-1]["d_loss"])
    # Then its final losses are the last interval's means, which the last progress line prints
    assert result.final_d_loss == result.history[-1]["d_loss"]
    assert result.final_g_loss == result.history[-1]["g_loss"]


def logged_run(skipped_at: int | None = None) -> tuple[list[dict], list[dict], dict]:
    """A history, frames (138 px grids, step 0 black) and summary, as a 60-step run leaves them."""
    history = [
        {"step": s, "d_loss": 1 - s / 100, "g_loss": 1 + s / 100, "gp": 130 - s, "aux": 0.3,
         "gp_skipped": 2 if s == skipped_at else 0, "aug_prob": 0.3}
        for s in range(10, 70, 10)
    ]  # fmt: skip
    frames = [
        {"step": s, "png": encode(Image.new("RGB", (138, 138), (s,) * 3))} for s in (0, 30, 60)
    ]
    return history, frames, {"aug_prob": 0.3, "end_step": 60}


def panels(page: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", page)


def test_penalty_and_reconstruction_loss_get_axes_of_their_own_that_say_what_they_measure():
    page = training_report_html(*logged_run())
    # The penalty (50-130) and the reconstruction loss (0.3) are each on a panel of their own
    (penalty,) = [svg for svg in panels(page) if "Gradient penalty" in svg]
    (reconstruction,) = [svg for svg in panels(page) if "reconstruction loss" in svg]
    assert penalty != reconstruction
    assert "#2ca02c" in penalty and "#9467bd" not in penalty
    # And every axis says what it measures
    measures = [re.findall(r'rotate\(-90\)"[^>]*>([^<]+)<', svg) for svg in panels(page)]
    assert measures == [["loss"], ["penalty"], ["mean squared error"]]
    assert all("training step" in svg for svg in panels(page))


def test_a_fixed_augmentation_probability_is_one_line_of_text_not_a_chart():
    page = training_report_html(*logged_run())
    assert "Augmentation probability: 0.30 for the whole run" in page
    assert not any("ugmentation" in svg for svg in panels(page))


def test_training_page_opens_on_the_latest_frame_upscaled_without_blur():
    history, frames, summary = logged_run()
    page = training_report_html(history, frames, summary)
    first = re.search(r'<img src="([^"]+)" width="(\d+)"', page)
    latest = "data:image/png;base64," + base64.b64encode(frames[-1]["png"]).decode()
    assert first.group(1) == latest and "step 60 (latest)" in page
    assert first.group(2) == "276"  # a whole multiple of the 138 px grid
    assert "image-rendering:pixelated" in page


def test_skipped_gradient_penalties_get_a_one_line_note_only_when_there_were_some():
    assert "were not finite" not in training_report_html(*logged_run())
    page = training_report_html(*logged_run(skipped_at=40))
    assert "2 gradient penalties were not finite and were left out" in page
    assert "the first ending at step 40" in page


def test_gallery_compares_with_real_images_and_explains_the_scores(trained_model, cleansed_sample, tmp_path):  # fmt: skip
    out = tmp_path / "samples"
    result = generate_images(trained_model, out, count=8, interpolation_steps=4)
    scores = swd_with_references(*load_pair(cleansed_sample, out, fake_pattern="image_*.png"))
    assert scores["real_floor"] < scores["noise"]
    page = gallery_html(
        out, cleansed_sample, result.files, scores, result.metadata(), "gs://b/run/samples"
    )
    assert "Real training images (16 of 96)" in page
    assert 'href="https://storage.cloud.google.com/b/run/samples/image_0003.png"' in page
    assert "Interpolation" in page and "real_floor" in page and "noise" in page
    assert f"{scores['swd']:.4f}" in page


@pytest.fixture(scope="module")
def gallery(trained_model, cleansed_sample, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("gallery") / "samples"
    result = generate_images(trained_model, out, count=8, interpolation_steps=4)
    scores = swd_with_references(*load_pair(cleansed_sample, out, fake_pattern="image_*.png"))
    return gallery_html(out, cleansed_sample, result.files, scores, result.metadata()), out


def test_generated_and_real_images_are_laid_out_in_the_same_grid(gallery):
    page, _ = gallery
    grids = re.findall(r"<div class='grid' style='--cell:(\d+)px'>(.*?)</div>", page)
    assert [(cell, body.count("<img")) for cell, body in grids] == [("64", 8), ("64", 16)]
    assert "grid-template-columns:repeat(auto-fill,minmax(var(--cell),1fr))" in page


def test_gallery_says_how_the_images_were_made_in_a_sentence(gallery):
    page, _ = gallery
    text = html.unescape(page)
    assert "8 images from the generator's trained weights at step 2, seed 0 (" in text
    assert "count:" not in page and "images_per_second" not in page


def test_the_interpolation_strip_is_upscaled_like_the_samples(gallery):
    page, out = gallery
    with Image.open(out / "interpolation.png") as strip:
        native = strip.width
    widths = [int(w) for w in re.findall(r'<img width="(\d+)"', page)]
    assert widths[0] == 64 and widths[-1] == 2 * native  # 32 px samples and the strip: twice
    assert "image-rendering:pixelated" in page


def test_gallery_of_64_images_at_256_px_stays_under_3_mb(cleansed_sample, tmp_path):
    big = tmp_path / "real256"
    cleanse_folder(Path("data/sample"), big, CleanseSettings(image_size=256, min_side=1, workers=1))
    config = TrainConfig(image_size=256, batch_size=2, steps=1, latent_dim=32, fmap_max=16, save_every=1)  # fmt: skip
    train_gan(big, tmp_path / "model", config)
    out = tmp_path / "samples"
    result = generate_images(tmp_path / "model", out, count=64, interpolation_steps=8)
    scores = swd_with_references(*load_pair(big, out, fake_pattern="image_*.png"))
    page = gallery_html(out, big, result.files, scores, result.metadata())
    assert page.count("<img") == 64 + 16 + 1
    assert len(page.encode()) < 3_000_000, f"{len(page.encode())} bytes"
    widths = [int(w) for w in re.findall(r'<img width="(\d+)"', page)]
    assert max(widths[:-1]) == 256 and widths[-1] <= 1024  # the strip may be wider


def test_contact_sheet_shows_kept_and_dropped_images_per_reason(zoo_report):
    root, out, report = zoo_report
    page = contact_sheet_html(
        folder_inputs(root), out, report.examples, report.dropped, report.sources
    )
    for reason, count in report.dropped.items():
        assert f"Dropped: {reason} ({count})" in page
    assert f"Kept ({report.kept})" in page
    assert "repeats original.png" in page
    thumbnails = page.count("data:image/webp;base64,")
    assert thumbnails >= min(report.kept, 8) + 1  # kept ones plus at least the duplicate
    assert "not shown" in page  # broken files are named, not drawn


def test_contact_sheet_names_every_file_by_its_source_path(zoo_report):
    root, out, report = zoo_report
    page = contact_sheet_html(
        folder_inputs(root), out, report.examples, report.dropped, report.sources
    )
    assert "<figcaption>sub/dir/nested.png</figcaption>" in page
    assert "sub__dir__nested" not in page  # the name in the array's index is not shown
    assert "<figcaption>original.png</figcaption>" in page  # the kept one a duplicate repeats
    assert "repeats original.png" in page


def test_contact_sheet_says_how_many_kept_images_it_shows_and_offers_more(tmp_path):
    # Given the 96 kept sample images
    report = cleanse_folder(Path("data/sample"), tmp_path, CleanseSettings(workers=1))
    page = contact_sheet_html([], tmp_path, {}, {}, report.sources)
    # Then the page says it shows 8 of them, and opens 40 more on a click
    assert "<h3>Kept (96)</h3><p>8 of 96 shown" in page
    shown, more = page.split("<details>")
    assert shown.count("<img") == 8
    assert "<summary>40 more (48 of 96)</summary>" in more and more.count("<img") == 40


def test_cleanse_report_names_the_array_it_wrote(zoo_report):
    _, _, report = zoo_report
    text = report.markdown()
    assert "as 32x32 RGB images in `images.npy`" in text and "PNGs" not in text


@pytest.fixture
def zoo_report(tmp_path):
    from tests.test_image_cleanse import build_zoo

    root, out = tmp_path / "zoo", tmp_path / "out"
    root.mkdir()
    build_zoo(root)
    report = cleanse_folder(
        root, out, CleanseSettings(image_size=32, max_pixels=4_000_000, workers=1)
    )
    return root, out, report


def test_swd_references_bracket_a_real_and_a_noise_sample(cleansed_sample):
    images = load_pair(cleansed_sample, cleansed_sample)[0]
    noise = torch.rand(images[:32].shape, generator=torch.Generator().manual_seed(3))
    on_noise = swd_with_references(images, noise)
    on_real = swd_with_references(images, images[48:80])
    assert on_real["real_floor"] < on_noise["swd"]
    assert on_noise["swd"] == pytest.approx(on_noise["noise"], rel=0.25)
    assert on_real["swd"] < on_real["noise"] / 2


def test_curves_and_frames_reach_the_mirror_while_training_still_runs(cleansed_sample, tmp_path):
    # Given a run training 40 steps, logging every step, mirrored to a folder
    mirror, model = tmp_path / "mirror", tmp_path / "model"
    code = (
        "import sys; from pathlib import Path; from dataclasses import replace;"
        "from tests.conftest import SMOKE; from src.common.step_logging import configure_logging;"
        "from src.gan.training.loop import train_gan; configure_logging();"
        "train_gan(Path(sys.argv[1]), Path(sys.argv[2]), replace(SMOKE, steps=40, save_every=100),"
        " checkpoint_root=sys.argv[3])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(cleansed_sample), str(model), str(mirror)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # When the first logging interval has passed
        deadline = time.monotonic() + 240
        while (
            not list((mirror / BOARD).glob("events.out.tfevents.*")) and time.monotonic() < deadline
        ):
            assert process.poll() is None, process.stderr.read()[-3000:]
            time.sleep(0.2)
        # Then the event files and a progress frame are in the mirror, and training goes on
        still_training = process.poll() is None
        frames = list((mirror / FOLDER).glob("step_*.png"))
        accumulator = EventAccumulator(str(mirror / BOARD))
        accumulator.Reload()
    finally:
        process.send_signal(signal.SIGTERM)
        log = process.communicate(timeout=240)[1]
    assert still_training and frames
    assert "loss/discriminator" in accumulator.Tags()["scalars"]
    assert f"watch it live: tensorboard --logdir {mirror}/{BOARD}" in log


def test_live_copies_come_at_the_first_interval_then_at_most_once_a_minute(tmp_path):
    live = LiveSync(tmp_path, CheckpointMirror(str(tmp_path / "mirror")), every_s=60)
    assert live.due(now=0.0)
    live._last = 0.0
    assert not live.due(now=59.9) and live.due(now=60.0)
