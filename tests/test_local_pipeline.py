"""The whole pipeline with kfp.local against the real GCS emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.backends.local import LocalRunOptions, run_locally
from src.cli.main import main

SMOKE_PARAMS = {"latent_dim": "32", "fmap_max": "16", "save_every": "1"}


@pytest.mark.slow
def test_default_pipeline_runs_end_to_end_on_the_emulator(tmp_path):
    # Given the bundled sample set in a fresh emulator (started by run_locally)
    options = LocalRunOptions(
        given={"steps": 2, "batch_size": 2, "num_images": 6, **SMOKE_PARAMS}, workdir=tmp_path
    )
    # When the four steps run
    summary = run_locally(options)
    # Then every step produced real outputs
    assert summary.succeeded, summary.text()
    steps = summary.steps
    assert steps["download-images"]["object_count"] == 101
    assert steps["cleanse-images"]["metrics"]["kept"] == 96
    assert steps["cleanse-images"]["metrics"]["dropped_truncated"] == 1
    assert steps["train-gan"]["metrics"]["end_step"] == 2
    checkpoint = torch.load(Path(steps["train-gan"]["uri"]) / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 2
    samples = Path(steps["generate-images"]["uri"])
    pngs = sorted(samples.glob("image_*.png"))
    assert len(pngs) == 6 and {Image.open(p).size for p in pngs} == {(32, 32)}
    assert (samples / "grid.png").is_file()
    assert "data:image/png" in Path(steps["generate-images"]["gallery"]).read_text()
    text = summary.text()
    assert "kept 96" in text and "framework overhead" in text


def test_failing_step_makes_run_exit_non_zero_and_names_the_step(
    emulator, sample_bucket, tmp_path, capsys
):
    code = main(
        [
            "run",
            "--source",
            "gs://sample-images/no-such-prefix/",
            "--workdir",
            str(tmp_path),
            "--steps",
            "1",
        ]
    )
    assert code == 1
    assert "FAILED at step download-images" in capsys.readouterr().out


def test_bad_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    code = main(["run", "--image-size", "48", "--workdir", str(tmp_path)])
    assert code == 2
    assert "power of two" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_param_names_the_valid_ones(tmp_path, capsys):
    code = main(["run", "--param", "stepz=3", "--workdir", str(tmp_path)])
    assert code == 2
    assert "unknown pipeline parameter 'stepz'" in capsys.readouterr().err


def test_summary_metrics_come_from_executor_outputs(tmp_path):
    from src.backends.local import read_task_outputs

    task = tmp_path / "download-images"
    task.mkdir()
    (task / "executor_output.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "images": {
                        "artifacts": [
                            {"uri": "/x", "metadata": {"object_count": 7, "work_seconds": 1.5}}
                        ]
                    }
                }
            }
        )
    )
    outputs = read_task_outputs(tmp_path)
    assert outputs["download-images"]["object_count"] == 7
    assert outputs["download-images"]["uri"] == "/x"


@pytest.mark.slow
def test_changed_bucket_is_never_served_from_the_cache(emulator, fresh_bucket, tmp_path):
    # Given a bucket with 6 images and a cached first run
    from src.backends.local import SAMPLE_DIR

    for path in sorted(SAMPLE_DIR.glob("digit_00[0-5].png")):
        fresh_bucket.blob(f"set/{path.name}").upload_from_filename(str(path))
    options = LocalRunOptions(
        given={
            "source_uri": f"gs://{fresh_bucket.name}/set/",
            "steps": 1,
            "batch_size": 2,
            "num_images": 2,
            **SMOKE_PARAMS,
        },
        workdir=tmp_path,
        caching=True,
    )
    first = run_locally(options)
    assert first.succeeded, first.text()
    # When two images are added and the pipeline runs again with caching on
    for path in sorted(SAMPLE_DIR.glob("digit_01[0-1].png")):
        fresh_bucket.blob(f"set/{path.name}").upload_from_filename(str(path))
    second = run_locally(options)
    # Then the new listing flowed through download and cleanse
    assert second.succeeded, second.text()
    assert "download-images" in second.steps, "the download step was served from the cache"
    assert first.steps["download-images"]["object_count"] == 6
    assert second.steps["download-images"]["object_count"] == 8
    assert second.steps["cleanse-images"]["metrics"]["kept"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "steps=0"], "steps=0 must be positive"),
        (["--source", "/data/cats"], "is not a GCS URI"),
        (
            ["--param", "dual_contrast_loss=true", "--param", "disc_output_size=5"],
            "disc_output_size=1",
        ),
    ],
)
def test_bad_values_given_as_params_are_refused_before_anything_runs(
    tmp_path, capsys, args, message
):
    assert main(["run", "--workdir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
