"""Small helpers the components share for their output artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.common.atomic_files import write_json_atomically


def write_metrics_file(metrics: Any) -> None:
    """Also stores a Metrics artifact's values as JSON at its path.

    KFP keeps metrics in the executor output only; kfp.local's cache then sees
    the artifact's file as missing and reruns the step, so `run --resume` could
    not reuse it. The file also gives a person the numbers beside the outputs.
    """
    path = Path(metrics.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, dict(metrics.metadata))
