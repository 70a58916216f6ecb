"""Each component body, called through `python_func` with real artifacts on tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model
from PIL import Image

from src.backends.sample import SAMPLE_DIR
from src.common.errors import ConfigError
from src.components import cleanse_images, download_images, generate_images, train_gan
from tests.support.components import run_component
from tests.support.datasets import cleansed_images, shard_members


def artifact(kind, path: Path):
    return kind(uri=str(path))


def test_download_component_fills_dataset_and_metadata(sample_bucket, tmp_path):
    images = artifact(Dataset, tmp_path / "raw")
    run_component(download_images, source_uri=sample_bucket, images=images, download_workers=4)
    manifest = json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert images.metadata["object_count"] == len(manifest["objects"]) == 101
    assert images.metadata["manifest_sha256"] == manifest["sha256"]
    assert images.metadata["source_uri"] == sample_bucket
    assert "digit_000.png" in shard_members(tmp_path / "raw")


def test_missing_fid_weights_fail_the_first_step_before_downloading(fresh_bucket, tmp_path):
    # Given images in a bucket, and fid_weights_uri naming an object that is not there
    for path in sorted(SAMPLE_DIR.glob("digit_00[0-3].png")):
        fresh_bucket.blob(f"set/{path.name}").upload_from_filename(str(path))
    weights = f"gs://{fresh_bucket.name}/weights/inception_v3_google.pth"
    images = artifact(Dataset, tmp_path / "raw")
    # When the first step runs, with an image_size that is wrong as well
    with pytest.raises(ConfigError) as failure:
        run_component(
            download_images,
            source_uri=f"gs://{fresh_bucket.name}/set/",
            images=images,
            fid_weights_uri=weights,
            image_size=48,
        )
    # Then both problems are reported at once, the object named with the fix; nothing downloaded
    message = str(failure.value)
    assert message.startswith("2 problems:") and "image_size=48" in message
    assert f"fid_weights_uri={weights!r}: no such object (or bucket)" in message
    assert "leave fid_weights_uri empty" in message
    assert not (tmp_path / "raw").exists()


def test_readable_fid_weights_pass_the_first_step(fresh_bucket, tmp_path):
    fresh_bucket.blob("set/digit_000.png").upload_from_filename(str(SAMPLE_DIR / "digit_000.png"))
    fresh_bucket.blob("weights/inception.pth").upload_from_string(b"weights")
    images = artifact(Dataset, tmp_path / "raw")
    run_component(
        download_images,
        source_uri=f"gs://{fresh_bucket.name}/set/",
        images=images,
        fid_weights_uri=f"gs://{fresh_bucket.name}/weights/inception.pth",
    )
    assert images.metadata["object_count"] == 1


def test_cleanse_component_writes_dataset_metrics_and_report(sample_bucket, tmp_path):
    raw = artifact(Dataset, tmp_path / "raw")
    run_component(download_images, source_uri=sample_bucket, images=raw, download_workers=4)
    cleansed, metrics, report = (
        artifact(Dataset, tmp_path / "clean"),
        artifact(Metrics, tmp_path / "m"),
        artifact(Markdown, tmp_path / "r"),
    )
    run_component(
        cleanse_images,
        raw_images=raw,
        cleansed=cleansed,
        metrics=metrics,
        report=report,
        contact_sheet=artifact(HTML, tmp_path / "sheet.html"),
        image_size=32,
    )
    assert cleansed.metadata["image_count"] == metrics.metadata["kept"] == 96
    assert "Dropped: truncated (1)" in (tmp_path / "sheet.html").read_text()
    assert metrics.metadata["dropped_truncated"] == 1
    assert metrics.metadata["dropped_duplicate"] == 1
    assert "| truncated | 1 |" in Path(report.path).read_text()
    images = cleansed_images(tmp_path / "clean")
    assert len(images) == 96 and next(iter(images.values())).size == (32, 32)


def test_train_component_writes_a_loadable_model_and_metrics(cleansed_sample, tmp_path, capsys):
    model, metrics, curves = (
        artifact(Model, tmp_path / "model"),
        artifact(Metrics, tmp_path / "m"),
        artifact(HTML, tmp_path / "c.html"),
    )
    run_component(
        train_gan,
        images=artifact(Dataset, cleansed_sample),
        model=model,
        metrics=metrics,
        training_report=curves,
        image_size=32,
        batch_size=2,
        gradient_accumulate_every=1,
        steps=2,
        latent_dim=32,
        fmap_max=16,
        attn_res_layers="",
        save_every=1,
    )
    assert metrics.metadata["end_step"] == 2
    assert model.metadata["step"] == 2
    assert (tmp_path / "model" / "checkpoint.pt").is_file()
    assert "<svg" in Path(curves.path).read_text()
    # The artifact is not on gs:// and no checkpoint_root was given: the first lines say what a
    # retry would lose, and the metrics record it
    log = capsys.readouterr().err
    assert log.index("no checkpoint mirror") < log.index("training 96 images")
    assert "starts again at step 0; set checkpoint_root=gs://BUCKET/FOLDER" in log
    assert metrics.metadata["checkpoints_mirrored"] == 0
    assert metrics.metadata["amp_off"] == 1 and model.metadata["amp"] == "off"


def test_generate_component_writes_n_pngs_grid_gallery_and_score(
    trained_model, cleansed_sample, tmp_path
):
    samples, gallery, metrics = (
        artifact(Artifact, tmp_path / "s"),
        artifact(HTML, tmp_path / "g.html"),
        artifact(Metrics, tmp_path / "m"),
    )
    run_component(
        generate_images,
        model=artifact(Model, trained_model),
        real_images=artifact(Dataset, cleansed_sample),
        samples=samples,
        gallery=gallery,
        metrics=metrics,
        num_images=5,
        seed=3,
        interpolation_steps=4,
    )
    pngs = sorted((tmp_path / "s").glob("image_*.png"))
    assert len(pngs) == 5 and all(Image.open(p).size == (32, 32) for p in pngs)
    assert (tmp_path / "s" / "grid.png").is_file() and (
        tmp_path / "s" / "interpolation.png"
    ).is_file()
    assert samples.metadata["generator"] == "raw"
    assert metrics.metadata["swd_vs_real"] > 0
    page = Path(gallery.path).read_text()
    assert page.count("data:image/webp;base64,") == 5 + 16 + 1  # generated, real, interpolation
    assert metrics.metadata["swd_real_floor"] < metrics.metadata["swd_noise"]


@pytest.mark.parametrize(
    ("channels", "mode"), [({"transparent": True}, "RGBA"), ({"greyscale": True}, "L")]
)
def test_alpha_and_grey_images_flow_through_cleanse_train_and_generate(
    sample_bucket, tmp_path, channels, mode
):
    raw = artifact(Dataset, tmp_path / "raw")
    run_component(download_images, source_uri=sample_bucket, images=raw, download_workers=4)
    cleansed = artifact(Dataset, tmp_path / "clean")
    run_component(cleanse_images, raw_images=raw, cleansed=cleansed, metrics=artifact(Metrics, tmp_path / "m1"), report=artifact(Markdown, tmp_path / "r"), contact_sheet=artifact(HTML, tmp_path / "cs"), image_size=32, **channels)  # fmt: skip
    assert cleansed.metadata["mode"] == mode
    model = artifact(Model, tmp_path / "model")
    run_component(train_gan, images=cleansed, model=model, metrics=artifact(Metrics, tmp_path / "m2"), training_report=artifact(HTML, tmp_path / "c.html"), image_size=32, batch_size=2, gradient_accumulate_every=1, steps=1, latent_dim=32, fmap_max=16, attn_res_layers="", **channels)  # fmt: skip
    samples = artifact(Artifact, tmp_path / "s")
    run_component(generate_images, model=model, real_images=cleansed, samples=samples, gallery=artifact(HTML, tmp_path / "g.html"), metrics=artifact(Metrics, tmp_path / "m3"), num_images=2, interpolation_steps=0)  # fmt: skip
    with Image.open(tmp_path / "s" / "image_0000.png") as image:
        assert image.mode == mode
