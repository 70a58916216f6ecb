"""Run the whole pipeline on this machine: kfp.local steps, a GCS emulator, a summary.

With no `source_uri`, a fake-gcs-server is started on 127.0.0.1 and the bundled
sample set (data/sample) is uploaded to it; with one, real GCS is read
with application-default credentials.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp import local

from src.backends.emulator import GcsEmulator
from src.params.schema import SAMPLE_SOURCE, local_defaults
from src.params.values import resolve
from src.pipeline import build_pipeline

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE_BUCKET, SAMPLE_PREFIX = SAMPLE_SOURCE.removeprefix("gs://").split("/", 1)
STEP_NAMES = (
    "check-parameters",
    "download-images",
    "cleanse-images",
    "train-gan",
    "generate-images",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class LocalRunOptions:
    """A local run: the parameters given (strings or values), where outputs go, caching."""

    given: dict[str, Any] = field(default_factory=dict)
    workdir: Path = Path("runs")
    caching: bool = False

    @property
    def uses_sample(self) -> bool:
        """No source given: serve the bundled sample set from a local emulator."""
        return "source_uri" not in self.given

    def parameters(self) -> dict[str, Any]:
        """Pipeline arguments: local defaults overridden by what was given, all checked."""
        return resolve(self.given, local_defaults())


@dataclass
class LocalRunSummary:
    succeeded: bool
    run_dir: Path
    wall_seconds: float
    failed_step: str | None = None
    error: str | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def work_seconds(self) -> float:
        return sum(float(s.get("work_seconds", 0.0)) for s in self.steps.values())

    @property
    def overhead_seconds(self) -> float:
        return self.wall_seconds - self.work_seconds

    def text(self) -> str:
        """The closing summary a person reads."""
        if not self.succeeded:
            return (
                f"FAILED at step {self.failed_step or 'unknown'}: {self.error}\n"
                f"Logs and partial outputs: {self.run_dir}"
            )
        download = self.steps["download-images"]
        cleanse = self.steps["cleanse-images"]
        train = self.steps["train-gan"]
        generate = self.steps["generate-images"]
        dropped = cleanse["metrics"]
        dropped_text = ", ".join(
            f"{k.removeprefix('dropped_')} {int(v)}"
            for k, v in sorted(dropped.items())
            if k.startswith("dropped_")
        )
        return "\n".join(
            [
                "Pipeline succeeded.",
                f"  download:  {download['object_count']} objects, {download['total_bytes'] / 1e6:.2f} MB from {download['source_uri']}",
                f"  cleanse:   kept {int(dropped['kept'])}, dropped {dropped_text or 'none'}",
                f"  train:     steps {int(train['metrics']['start_step'])}->{int(train['metrics']['end_step'])} in {train['metrics']['seconds']:.1f}s "
                f"({train['metrics']['steps_per_second']:.2f} steps/s), final d={train['metrics'].get('final_d_loss', float('nan')):.3f} "
                f"g={train['metrics'].get('final_g_loss', float('nan')):.3f}",
                f"  generate:  {generate['count']} images ({generate['generator']} generator), SWD vs real {generate['swd']:.3f}",
                f"  grid:      {generate['uri']}/grid.png",
                f"  gallery:   {generate['gallery']}",
                f"  model:     {train['uri']}",
                f"Wall time {self.wall_seconds:.1f}s = work {self.work_seconds:.1f}s + framework overhead {self.overhead_seconds:.1f}s",
            ]
        )


def upload_folder(client, folder: Path, bucket_name: str, prefix: str) -> int:
    """Uploads every file below `folder` to gs://bucket/prefix, keeping relative paths."""
    bucket = client.bucket(bucket_name)
    if not bucket.exists():
        bucket = client.create_bucket(bucket_name)
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        bucket.blob(prefix + path.relative_to(folder).as_posix()).upload_from_filename(str(path))
        count += 1
    return count


def read_task_outputs(run_root: Path) -> dict[str, dict[str, Any]]:
    """Per task: artifact metadata, metrics and URIs from kfp.local's executor_output.json."""
    steps: dict[str, dict[str, Any]] = {}
    for executor_output in sorted(run_root.glob("*/executor_output.json")):
        task = executor_output.parent.name
        payload = json.loads(executor_output.read_text())
        info: dict[str, Any] = {"metrics": {}}
        for name, artifact_list in payload.get("artifacts", {}).items():
            for artifact in artifact_list.get("artifacts", []):
                metadata = artifact.get("metadata", {})
                uri = artifact.get("uri", "")
                if name == "metrics":
                    info["metrics"].update(metadata)
                    continue
                info.update(metadata)
                local = uri.removeprefix("file://") if uri else str(executor_output.parent / name)
                if name in ("gallery", "loss_curves", "report"):
                    info[name] = local
                else:
                    info.setdefault("uri", local)
        steps[task] = info
    return steps


def _failed_step(message: str, run_root: Path) -> str | None:
    for name in STEP_NAMES:
        if re.search(rf"Task '{name}' finished with status FAILURE", message):
            return name
    done = {p.parent.name for p in run_root.glob("*/executor_output.json")}
    return next((name for name in STEP_NAMES if name not in done), None)


def _run_folders(pipeline_root: Path) -> set[Path]:
    return {p for p in pipeline_root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def run_locally(options: LocalRunOptions) -> LocalRunSummary:
    """Runs the four steps with kfp.local and returns what happened."""
    params = options.parameters()

    workdir = options.workdir.resolve()
    # One pipeline root per workdir: kfp.local keeps its cache there, runs get their own folders.
    pipeline_root = workdir / "pipeline_root"
    pipeline_root.mkdir(parents=True, exist_ok=True)
    runs_before = _run_folders(pipeline_root)
    os.environ.setdefault("PIP_NO_INDEX", "1")  # everything the steps pin is already installed
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    emulator = None
    previous_host = os.environ.get("STORAGE_EMULATOR_HOST")
    started = time.monotonic()
    try:
        if options.uses_sample:
            emulator = GcsEmulator.start(workdir / "logs")
            os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
            uploaded = upload_folder(emulator.client(), SAMPLE_DIR, SAMPLE_BUCKET, SAMPLE_PREFIX)
            log.info(
                "emulator at %s holds %d sample files under %s",
                emulator.url,
                uploaded,
                SAMPLE_SOURCE,
            )
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(pipeline_root),
            enable_caching=options.caching,
            raise_on_error=True,
        )
        started = time.monotonic()
        try:
            build_pipeline("local")(**params)
        except RuntimeError as error:
            message = _ANSI.sub("", str(error))
            new_runs = _run_folders(pipeline_root) - runs_before
            failed_run = max(new_runs) if new_runs else pipeline_root
            return LocalRunSummary(
                succeeded=False,
                run_dir=failed_run,
                wall_seconds=time.monotonic() - started,
                failed_step=_failed_step(message, failed_run),
                error=message.strip().splitlines()[-1] if message.strip() else "unknown error",
            )
        wall = time.monotonic() - started
    finally:
        if emulator is not None:
            emulator.stop()
            if previous_host is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous_host
    run_dir = max(_run_folders(pipeline_root) - runs_before)
    return LocalRunSummary(
        succeeded=True, run_dir=run_dir, wall_seconds=wall, steps=read_task_outputs(run_dir)
    )
