"""Shared fixtures: a real GCS emulator, the sample images, small training settings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools import smoke
from src.backends.emulator import GcsEmulator
from src.backends.sample import SAMPLE_DIR, upload_folder

# Components pip-install their pinned packages; here they are installed already.
os.environ.setdefault("PIP_NO_INDEX", "1")
os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")

SMOKE = smoke.SMOKE  # what tests import from here


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """One fake-gcs-server for the session; STORAGE_EMULATOR_HOST points at it."""
    server = GcsEmulator.start(tmp_path_factory.mktemp("emulator"))
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def gcs_client(emulator: GcsEmulator):
    return emulator.client()


@pytest.fixture(scope="session")
def sample_bucket(gcs_client) -> str:
    """gs://sample-images/digits/ holds the bundled sample set."""
    upload_folder(gcs_client, SAMPLE_DIR, "sample-images", "digits/")
    return "gs://sample-images/digits/"


@pytest.fixture
def fresh_bucket(gcs_client, request: pytest.FixtureRequest):
    """An empty bucket named after the test."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip(
        "-"
    )
    bucket = gcs_client.bucket(name)
    if bucket.exists():
        for blob in gcs_client.list_blobs(name):
            blob.delete()
    else:
        bucket = gcs_client.create_bucket(name)
    return bucket


@pytest.fixture(scope="session")
def cleansed_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample set cleansed to 32 px once for the session."""
    from src.data.cleanse import CleanseSettings, cleanse_folder

    out = tmp_path_factory.mktemp("cleansed")
    cleanse_folder(SAMPLE_DIR, out, CleanseSettings(image_size=32, workers=1))
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, cleansed_sample: Path) -> Path:
    """A model folder after SMOKE training."""
    from src.gan.training.loop import train_gan

    out = tmp_path_factory.mktemp("model")
    train_gan(cleansed_sample, out, SMOKE)
    return out


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts real tmpfs disks of a few KiB (needs root; skips without it); unmounts them after."""
    mounts: list[Path] = []

    def mount(kib: int) -> Path:
        path = tmp_path / f"disk{len(mounts)}"
        path.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.fixture
def captured(monkeypatch):
    """Records create_pipeline_job requests; get_pipeline_job reports `final_state`."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform import pipeline_jobs
    from google.cloud.aiplatform.compat.services import pipeline_service_client
    from google.cloud.aiplatform.compat.types import pipeline_job as gca_pipeline_job
    from google.cloud.aiplatform.compat.types import pipeline_state as gca_pipeline_state

    from src.backends import vertex as submit_vertex

    Client = pipeline_service_client.PipelineServiceClient
    record: dict = {"requests": [], "final_state": "PIPELINE_STATE_SUCCEEDED", "bucket_calls": 0}

    def create(self, parent, pipeline_job, pipeline_job_id=None, timeout=None, **kwargs):
        record["requests"].append(
            {"parent": parent, "job": pipeline_job, "job_id": pipeline_job_id}
        )
        return gca_pipeline_job.PipelineJob(
            name=f"{parent}/pipelineJobs/{pipeline_job_id}",
            state=gca_pipeline_state.PipelineState.PIPELINE_STATE_RUNNING,
        )

    def get(self, name, **kwargs):
        state = gca_pipeline_state.PipelineState[record["final_state"]]
        return gca_pipeline_job.PipelineJob(name=name, state=state)

    def bucket(**kwargs):
        record["bucket_calls"] += 1

    monkeypatch.setattr(Client, "create_pipeline_job", create)
    monkeypatch.setattr(Client, "get_pipeline_job", get)
    monkeypatch.setattr(
        pipeline_jobs.gcs_utils,
        "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist",
        bucket,
    )
    monkeypatch.setattr(submit_vertex, "default_credentials", lambda: AnonymousCredentials())
    return record


@pytest.fixture
def fake_kfp():
    """A recording fake of the KFP v2beta1 API on 127.0.0.1."""
    from tests.support.fake_kfp import FakeKfp

    fake = FakeKfp().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def project_image() -> str:
    """The project image built here (the stand-in base where no registry is reachable), by tag.

    Built once, and again only when what goes into it changed. No engine is a failure that
    says how to get one, never a skip.
    """
    from devtools.project_image import ImageBuildError, build
    from src.backends.containers import docker_client
    from src.common.errors import ConfigError

    try:
        docker_client()
        return build()
    except (ConfigError, ImageBuildError) as error:
        pytest.fail(f"the container tier needs the project image: {error}", pytrace=False)


@pytest.fixture(scope="session")
def uninterrupted_12_steps(tmp_path_factory: pytest.TempPathFactory):
    """What an interrupted and resumed 12-step run must end with (test_run_cli.py's settings)."""
    from tests.test_run_cli import uninterrupted_weights

    return uninterrupted_weights(tmp_path_factory.mktemp("uninterrupted"))
