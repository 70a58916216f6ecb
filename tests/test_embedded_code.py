"""The project's code travels inside the compiled command: run one as a backend would."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from src.embedded_code import embedded_files, reproducible_archive_b64
from src.local_run import SAMPLE_DIR
from src.pipeline import COMPILED_DIR, COMPILED_FILES


def executor_input(tmp_path: Path, raw: Path) -> dict:
    def artifact(name: str, schema: str, uri: Path) -> dict:
        return {
            "artifacts": [
                {"name": name, "type": {"schemaTitle": schema}, "uri": str(uri), "metadata": {}}
            ]
        }

    return {
        "inputs": {
            "parameterValues": {
                "image_size": 32,
                "mode": "RGB",
                "min_side": 0,
                "min_images": 2,
                "near_duplicate_distance": -1,
                "max_pixels": 1000000,
            },
            "artifacts": {"raw_images": artifact("raw_images", "system.Dataset", raw)},
        },
        "outputs": {
            "artifacts": {
                "cleansed": artifact("cleansed", "system.Dataset", tmp_path / "out" / "cleansed"),
                "metrics": artifact("metrics", "system.Metrics", tmp_path / "out" / "metrics"),
                "report": artifact("report", "system.Markdown", tmp_path / "out" / "report"),
            },
            "outputFile": str(tmp_path / "out" / "executor_output.json"),
        },
    }


def run_compiled(executor: str, payload: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs `executor`'s command from the Vertex YAML in an empty folder without `src`."""
    spec = yaml.safe_load((COMPILED_DIR / COMPILED_FILES["vertex"]).read_text())
    container = spec["deploymentSpec"]["executors"][executor]["container"]
    args = [json.dumps(payload) if arg == "{{$}}" else arg for arg in container["args"]]
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PIP_NO_INDEX"] = "1"
    probe = subprocess.run(
        [sys.executable, "-c", "import src"], cwd=workdir, env=env, capture_output=True
    )
    assert probe.returncode != 0, "src must not be importable there, or the test proves nothing"
    return subprocess.run(
        [*container["command"], *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_compiled_cleanse_command_runs_outside_the_repository(tmp_path):
    # Given a finished download and the cleanse executor exactly as compiled for Vertex
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    for path in sorted(SAMPLE_DIR.glob("digit_00*.png")):
        (raw / "images" / path.name).write_bytes(path.read_bytes())
    (raw / "manifest.json").write_text("{}")
    # When it runs as compiled, in an empty folder where `src` cannot be imported
    result = run_compiled("exec-cleanse-images", executor_input(tmp_path, raw), tmp_path)
    # Then the embedded modules did the work and wrote typed outputs
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    metrics = output["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["kept"] == 10
    assert len(list((tmp_path / "out" / "cleansed").glob("*.png"))) == 10


def test_compiled_train_command_spawns_data_parallel_processes(cleansed_sample, tmp_path):
    # Given cleansed images and the train executor exactly as compiled, asked for 2 processes
    def artifact(name: str, schema: str, uri: Path) -> dict:
        return {"artifacts": [{"name": name, "type": {"schemaTitle": schema}, "uri": str(uri)}]}

    out = tmp_path / "out"
    payload = {
        "inputs": {
            "parameterValues": {
                "image_size": 32, "batch_size": 2, "gradient_accumulate_every": 1, "steps": 2,
                "latent_dim": 32, "fmap_max": 16, "attn_res_layers": "", "save_every": 1,
                "processes": 2,
            },
            "artifacts": {"images": artifact("images", "system.Dataset", cleansed_sample)},
        },
        "outputs": {
            "artifacts": {
                "model": artifact("model", "system.Model", out / "model"),
                "metrics": artifact("metrics", "system.Metrics", out / "metrics"),
                "loss_curves": artifact("loss_curves", "system.HTML", out / "loss_curves"),
            },
            "outputFile": str(out / "executor_output.json"),
        },
    }  # fmt: skip
    # When it runs where `src` exists only inside the command (spawned ranks must find it too)
    result = run_compiled("exec-train-gan", payload, tmp_path)
    # Then both ranks trained and rank 0 wrote the model
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on 2 processes" in result.stderr
    output = json.loads((out / "executor_output.json").read_text())
    metrics = output["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["world_size"] == 2 and metrics["end_step"] == 2
    assert (out / "model" / "checkpoint.pt").is_file()


def test_archive_holds_the_work_modules_but_not_the_kfp_layer():
    data = gzip.decompress(base64.b64decode(reproducible_archive_b64()))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert {member.mtime for member in tar.getmembers()} == {0}
    assert "src/image_cleanse.py" in names and "src/gan_training.py" in names
    assert not any(name.startswith("src/components/") for name in names)
    assert len(names) == len(embedded_files())
