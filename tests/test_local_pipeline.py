"""The whole pipeline with kfp.local against the real GCS emulator, in process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.backends.local import LocalRunOptions, LocalRunSummary, read_task_outputs, run_locally
from src.backends.run_folder import RunFolder
from src.backends.sample import SAMPLE_DIR
from src.cli.main import main
from src.params.schema import local_defaults

SMOKE_PARAMS = {"latent_dim": "32", "fmap_max": "16", "save_every": "1"}


@pytest.mark.slow
def test_default_pipeline_runs_end_to_end_on_the_emulator(tmp_path):
    # Given the bundled sample set in a fresh emulator (started by the run's worker)
    options = LocalRunOptions(
        given={"steps": 2, "batch_size": 2, "num_images": 6, **SMOKE_PARAMS}, workdir=tmp_path
    )
    console = io.StringIO()
    # When every step runs
    summary = run_locally(options, console)
    # Then every step produced real outputs, in this run's own folder
    assert summary.succeeded, summary.text()
    steps = summary.steps
    assert steps["download-images"]["object_count"] == 101
    assert steps["cleanse-images"]["metrics"]["kept"] == 96
    assert steps["cleanse-images"]["metrics"]["dropped_truncated"] == 1
    assert steps["train-gan"]["metrics"]["end_step"] == 2
    checkpoint = torch.load(Path(steps["train-gan"]["uri"]) / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 2
    samples = Path(steps["generate-images"]["uri"])
    assert samples.is_relative_to(summary.run_dir)
    pngs = sorted(samples.glob("image_*.png"))
    assert len(pngs) == 6 and {Image.open(p).size for p in pngs} == {(32, 32)}
    assert (samples / "grid.png").is_file()
    # And the summary links browsable copies of the pages and the logs
    text = summary.text()
    assert "kept 96" in text
    for name in ("gallery", "training", "cleanse"):
        page = summary.run_dir / "report" / f"{name}.html"
        assert page.as_uri() in text and page.stat().st_size > 0
    assert "data:image/webp" in (summary.run_dir / "report" / "gallery.html").read_text()
    # And the console was quiet: step lines and progress; the full logs are files without colour
    printed = console.getvalue()
    assert printed.splitlines()[0] == f"run {summary.run.run_id}: {summary.run_dir}"
    assert "executor_input" not in printed and "\x1b[" not in printed
    for task in ("download-images", "cleanse-images", "train-gan", "generate-images"):
        log = (summary.run_dir / "logs" / f"{task}.log").read_text()
        assert f"Executing task '{task}'" in log and "\x1b[" not in log
    assert "step 2/2" in printed


def test_failing_step_ends_with_its_name_its_own_error_and_its_log(
    emulator, sample_bucket, tmp_path, capsys
):
    code = main(["run", "--source", "gs://no-such-bucket-xyz/images/", "--workdir", str(tmp_path)])
    assert code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    tail = "\n".join(lines[-6:])
    assert "FAILED at step download-images" in tail
    assert "bucket gs://no-such-bucket-xyz not found" in tail
    log = next(tmp_path.glob("*/logs/download-images.log"))
    assert f"log: {log}" in tail


def test_bad_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    code = main(["run", "--image-size", "48", "--workdir", str(tmp_path)])
    assert code == 2
    assert "power of two" in capsys.readouterr().err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_resume_refuses_new_parameters(tmp_path, capsys):
    assert main(["run", "--workdir", str(tmp_path), "--resume", "x", "--steps", "3"]) == 2
    assert "--resume continues a run with its own parameters" in capsys.readouterr().err


def test_summary_metrics_come_from_executor_outputs_and_a_later_execution_wins(tmp_path):
    for execution, count in (("lightweight-gan-1", 7), ("lightweight-gan-2", 9)):
        task = tmp_path / execution / "download-images"
        task.mkdir(parents=True)
        artifact = {"uri": f"/{execution}", "metadata": {"object_count": count}}
        payload = {"artifacts": {"images": {"artifacts": [artifact]}}}
        (task / "executor_output.json").write_text(json.dumps(payload))
    outputs = read_task_outputs(tmp_path)
    assert outputs["download-images"]["object_count"] == 9
    assert outputs["download-images"]["uri"] == "/lightweight-gan-2"


@pytest.mark.slow
def test_changed_bucket_is_downloaded_afresh_by_the_next_run(emulator, fresh_bucket, tmp_path):
    # Given a bucket with 6 images and a finished run
    for path in sorted(SAMPLE_DIR.glob("digit_00[0-5].png")):
        fresh_bucket.blob(f"set/{path.name}").upload_from_filename(str(path))
    given = {
        "source_uri": f"gs://{fresh_bucket.name}/set/",
        "steps": 1,
        "batch_size": 2,
        "num_images": 2,
        **SMOKE_PARAMS,
    }
    first = run_locally(LocalRunOptions(given=given, workdir=tmp_path), io.StringIO())
    assert first.succeeded, first.text()
    # When two images are added and the pipeline runs again in the same workdir
    for path in sorted(SAMPLE_DIR.glob("digit_01[0-1].png")):
        fresh_bucket.blob(f"set/{path.name}").upload_from_filename(str(path))
    second = run_locally(LocalRunOptions(given=given, workdir=tmp_path), io.StringIO())
    # Then the new listing flowed through download and cleanse
    assert second.succeeded, second.text()
    assert second.run_dir != first.run_dir
    assert first.steps["download-images"]["object_count"] == 6
    assert second.steps["download-images"]["object_count"] == 8
    assert second.steps["cleanse-images"]["metrics"]["kept"] == 8


def finished_steps(work_seconds: float) -> dict[str, dict]:
    """What read_task_outputs returns for a finished run of the grey sample set."""
    metrics = {"start_step": 0, "end_step": 60, "seconds": 20.0, "steps_per_second": 3.0}
    return {
        "download-images": {"object_count": 101, "total_bytes": 7e4, "source_uri": "gs://s/d/",
                            "work_seconds": work_seconds},
        "cleanse-images": {"metrics": {"kept": 96, "all_grey": 1}, "work_seconds": work_seconds},
        "train-gan": {"metrics": {**metrics, "final_d_loss": 0.246, "final_g_loss": 1.893},
                      "uri": "/m", "work_seconds": work_seconds},
        "generate-images": {"count": 16, "generator": "raw", "swd": 0.2, "real_floor": 0.05,
                            "noise": 0.3, "work_seconds": work_seconds},
    }  # fmt: skip


def test_a_resume_counts_only_the_time_of_the_steps_that_ran_again(tmp_path):
    # Given a resumed run whose four steps all came from the first attempt's cache (5.6 s each)
    steps, reused = finished_steps(5.6), {"download-images", "cleanse-images", "train-gan", "generate-images"}  # fmt: skip
    summary = LocalRunSummary(True, RunFolder(tmp_path), 1.2, steps=steps, reused=reused)
    # Then the summary does not claim more time inside the steps than the wall time
    last = summary.text().splitlines()[-1]
    assert last == "Wall time 1.2s, of it 0.0s inside the steps that ran (4 reused from an earlier attempt)"  # fmt: skip
    fresh = LocalRunSummary(True, RunFolder(tmp_path), 30.0, steps=finished_steps(5.6))
    assert fresh.text().splitlines()[-1] == "Wall time 30.0s, of it 22.4s inside the steps"


def test_a_grey_sets_advice_is_not_repeated_in_the_summary(tmp_path):
    # (the cleanse step's warning already showed it on the console)
    summary = LocalRunSummary(True, RunFolder(tmp_path), 30.0, steps=finished_steps(1.0))
    assert "greyscale" not in summary.text()


def test_too_few_images_for_the_batch_suggest_a_new_run_with_a_batch_that_fits(tmp_path):
    # Given a run of 4-image batches on its own source whose cleanse kept 3 images
    run = RunFolder(tmp_path / "runs" / "r1")
    params = {**local_defaults(), "source_uri": "gs://b/few/", "image_size": 64}
    params["checkpoint_root"] = str(run.checkpoints)
    run.root.mkdir(parents=True)
    run.spec_path.write_text(json.dumps({"params": params, "sample": False}))
    (run.pipeline_root / "lightweight-gan-1" / "cleanse-images").mkdir(parents=True)
    (run.pipeline_root / "lightweight-gan-1" / "cleanse-images" / "metrics").write_text(
        '{"kept": 3}'
    )
    error = "TooFewImagesError: only 3 usable images for batch_size=4 (of 3 files; dropped nothing)"
    summary = LocalRunSummary(False, run, 9.0, failed_step="cleanse-images", error=error)
    # Then it suggests the new run that can change the batch size, not a resume (which cannot)
    last = summary.text().splitlines()[-1]
    assert "--resume" not in summary.text()
    assert last == (
        f"  new run: python -m src.pipeline run --workdir {run.root.parent} "
        "--param source_uri=gs://b/few/ --param image_size=64 --param batch_size=3"
    )
