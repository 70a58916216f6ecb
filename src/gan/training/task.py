"""The train task's work without KFP: pipeline parameters in; the model, its metadata,
metrics and training page out (src/components/train_gan.py only adapts artifacts)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from src.common import runtime_env
from src.common.errors import ConfigError
from src.gan.config import TrainConfig
from src.gan.training.loop import TrainResult, train_gan
from src.gan.training.settings import config_from_params
from src.gan.watching.training_page import training_report_html

log = logging.getLogger(__name__)
CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}
# TrainResult values a person compares between runs, as metrics.
METRICS = (
    "end_step",
    "start_step",
    "seconds",
    "steps_per_second",
    "final_d_loss",
    "final_g_loss",
    "nan_restarts",
    "gp_skipped",
    "world_size",
)


@dataclass
class TaskOutputs:
    """What the component writes into its artifacts."""

    metadata: dict[str, Any]
    metrics: dict[str, float]
    page: str


def train_task(
    images_dir: Path, model_dir: Path, model_uri: str, params: Mapping[str, Any]
) -> TaskOutputs:
    """Trains on `images_dir` into `model_dir` with the pipeline parameters in `params`.

    Checkpoints are mirrored to `checkpoint_root`, else beside a gs:// model artifact,
    in `mirror/` next to it: a retry of the task gets the same URI again. Never onto the
    artifact itself: on Vertex AI `model_dir` is a FUSE view of those very objects, and
    gcsfuse fails a write to a file whose object changed behind it. Elsewhere there is
    no mirror.
    """
    started = time.monotonic()
    values = {name: value for name, value in params.items() if name in CONFIG_FIELDS}
    config = config_from_params(**values, log_every=max(1, min(100, params["steps"] // 20)))
    beside = model_uri.rsplit("/", 1)[0] + "/mirror" if model_uri.startswith("gs://") else ""
    mirror = params["checkpoint_root"] or beside
    check_mirror(mirror, model_uri)
    result = train_gan(
        images_dir,
        model_dir,
        config,
        world_size=params["train_processes"] or None,
        checkpoint_root=mirror,
        resume_from=params["resume_from"],
    )
    summary = result.as_dict()
    metadata = {
        "framework": "lightweight-gan",
        "step": result.end_step,
        "image_size": config.image_size,
        "amp": result.amp,
        "checkpoint_mirror": mirror,
        "work_seconds": time.monotonic() - started,
    }
    page = training_report_html(result.history, result.frames, summary)
    return TaskOutputs(metadata, training_metrics(result, mirror), page)


def check_mirror(mirror: str, model_uri: str) -> None:
    """Says in the step's first lines whether a retried attempt will find the checkpoints.

    On spot capacity (the compiled spot pipeline says so), which preempts the task, a
    run whose checkpoints would not survive it is refused.
    """
    if mirror.startswith("gs://") or (mirror and not os.environ.get(runtime_env.SPOT)):
        log.info("checkpoints are mirrored to %s: a retry resumes there", mirror)
        return
    lost = (
        f"no checkpoint mirror: the model artifact is at {model_uri} (not gs://) and "
        f"checkpoint_root is {mirror or 'empty'}, so a retried or preempted attempt starts "
        "again at step 0; set checkpoint_root=gs://BUCKET/FOLDER"
    )
    if os.environ.get(runtime_env.SPOT):
        raise ConfigError(f"this train task runs on spot capacity: {lost}")
    log.warning(lost)


def training_metrics(result: TrainResult, mirror: str) -> dict[str, float]:
    summary = result.as_dict()
    metrics = {key: round(float(summary[key]), 4) for key in METRICS if summary[key] is not None}
    metrics[f"amp_{result.amp}"] = 1
    metrics["checkpoints_mirrored"] = int(bool(mirror))
    return metrics
