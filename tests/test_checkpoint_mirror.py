"""Checkpoints survive an attempt that leaves nothing behind: a retry resumes from the mirror."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from kfp.dsl import HTML, Dataset, Metrics, Model

from devtools.http_proxy import HttpProxy
from src.common import runtime_env
from src.common.errors import ConfigError
from src.components import train_gan
from src.gan.model_folder import CheckpointError, load_checkpoint
from src.gan.training.checkpoint_mirror import CheckpointMirror
from src.gan.training.task import check_mirror, train_task
from src.params.schema import local_defaults
from tests.support.components import run_component

SMALL = {
    "image_size": 32, "batch_size": 2, "gradient_accumulate_every": 1, "latent_dim": 32,
    "fmap_max": 16, "attn_res_layers": "", "save_every": 1,
}  # fmt: skip


def artifact(kind, path: Path):
    return kind(uri=str(path), name=path.name, metadata={})


def run_attempt(images: Path, out: Path, steps: int, checkpoint_root: str) -> tuple[Model, dict]:
    """One attempt of the train task as a backend runs it: a fresh output folder."""
    model, metrics = artifact(Model, out / "model"), artifact(Metrics, out / "metrics")
    run_component(
        train_gan,
        images=artifact(Dataset, images),
        model=model,
        metrics=metrics,
        training_report=artifact(HTML, out / "loss.html"),
        steps=steps,
        checkpoint_root=checkpoint_root,
        **SMALL,
    )
    return model, metrics.metadata


KILLABLE = """
import sys
from pathlib import Path
from tests.test_checkpoint_mirror import run_attempt
run_attempt(Path(sys.argv[1]), Path(sys.argv[2]), 50, sys.argv[3])
"""


def test_fresh_attempt_resumes_from_the_gcs_mirror_after_a_killed_one(
    cleansed_sample, gcs_client, fresh_bucket, tmp_path
):
    root = f"gs://{fresh_bucket.name}/checkpoints/run-1"
    mirrored = "checkpoints/run-1/checkpoint.pt"
    # Given an attempt killed mid-training, whose own output folder is then lost
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(cleansed_sample), str(tmp_path / "a1"), root],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, killed_at = time.monotonic() + 240, 0
    try:
        while time.monotonic() < deadline and killed_at < 2:
            time.sleep(0.2)
            killed_at = mirrored_step(fresh_bucket, mirrored, tmp_path / "mirror.pt")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = mirrored_step(fresh_bucket, mirrored, tmp_path / "mirror.pt")
    assert killed_at >= 2, "the killed attempt never mirrored a checkpoint past step 2"
    # When a new attempt starts with an empty output folder and the same root
    model, metrics = run_attempt(cleansed_sample, tmp_path / "a2", killed_at + 2, root)
    # Then it resumed from the mirrored step and ends where an uninterrupted run ends
    assert (metrics["start_step"], metrics["end_step"]) == (killed_at, killed_at + 2)
    resumed = load_checkpoint(Path(model.path))
    straight, _ = run_attempt(cleansed_sample, tmp_path / "straight", killed_at + 2, "")
    a, b = load_checkpoint(Path(straight.path))["gan"], resumed["gan"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def mirrored_step(bucket, name: str, path: Path) -> int:
    """The step of the mirrored checkpoint, 0 while there is none."""
    blob = bucket.blob(name)  # a fresh handle: a used one pins the generation it read
    if not blob.exists():
        return 0
    blob.download_to_filename(str(path))
    return torch.load(path, weights_only=True, map_location="cpu")["step"]


def test_local_folder_mirror_lets_an_empty_model_folder_resume(cleansed_sample, tmp_path):
    root = str(tmp_path / "checkpoints")
    run_attempt(cleansed_sample, tmp_path / "a1", 2, root)
    _, metrics = run_attempt(cleansed_sample, tmp_path / "a2", 3, root)
    assert (metrics["start_step"], metrics["end_step"]) == (2, 3)
    assert load_checkpoint(tmp_path / "checkpoints")["step"] == 3


def test_gcs_mirror_rides_out_refused_and_cut_off_requests(fresh_bucket, emulator, tmp_path):
    # Given a mirror behind a proxy that answers every 3rd request 503 and cuts the first download
    payload = bytes(range(256)) * 4096  # 1 MiB: big enough to be cut off mid-body
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "checkpoint.pt").write_bytes(payload)
    cut = []

    def cut_first_download(path: str) -> bool:
        if "alt=media" in path and not cut:
            cut.append(path)
            return True
        return False

    with HttpProxy(emulator.url, fail_every=3, cut_body=cut_first_download) as proxy:
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
        try:
            mirror = CheckpointMirror(f"gs://{fresh_bucket.name}/run's #1")
            # When a checkpoint and a frame are pushed, listed and fetched back
            mirror.push(tmp_path / "out", "checkpoint.pt")
            mirror.push(tmp_path / "out", "checkpoint.pt", "frames/0001.png")
            names = mirror.names("frames")
            fetched = mirror.fetch(tmp_path / "back", "checkpoint.pt")
        finally:
            os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    # Then every call succeeded through the storage client's retries, and the bytes are whole
    assert proxy.failures >= 2 and cut
    assert names == ["frames/0001.png"] and fetched
    assert (tmp_path / "back" / "checkpoint.pt").read_bytes() == payload


@pytest.mark.parametrize("root", ["/", "", "//"])
def test_a_mirror_at_the_filesystem_root_or_the_working_directory_is_refused(root):
    with pytest.raises(CheckpointError, match="name a folder of its own"):
        CheckpointMirror(root)


def test_a_spot_task_without_a_gs_mirror_is_refused_naming_the_fix(monkeypatch):
    monkeypatch.setenv(runtime_env.SPOT, "1")
    with pytest.raises(ConfigError, match=r"spot capacity: .*checkpoint_root=gs://BUCKET/FOLDER"):
        check_mirror("/tmp/ck", "/local/model")


def test_a_gs_model_artifact_is_mirrored_beside_itself_never_onto_its_own_objects(
    cleansed_sample, gcs_client, fresh_bucket, tmp_path
):
    # Given the train task of a backend run whose Model artifact is on gs:// (on Vertex AI the
    # model folder is a FUSE view of these very objects) and no checkpoint_root
    model_uri = f"gs://{fresh_bucket.name}/run-1/train-gan/model"
    params = {**local_defaults(), **SMALL, "steps": 2, "checkpoint_root": ""}
    # When it trains
    outputs = train_task(cleansed_sample, tmp_path / "model", model_uri, params)
    # Then the mirror is mirror/ next to the artifact, and nothing was written onto the artifact
    names = [blob.name for blob in gcs_client.list_blobs(fresh_bucket.name)]
    assert (
        outputs.metadata["checkpoint_mirror"] == f"gs://{fresh_bucket.name}/run-1/train-gan/mirror"
    )
    assert "run-1/train-gan/mirror/checkpoint.pt" in names
    assert not [name for name in names if name.startswith("run-1/train-gan/model")], names
