"""Checks of the parameters that name storage locations (only the first step needs them).

Kept apart from checks.py, which every step ships: these pull in the GCS URI rules.
"""

from __future__ import annotations

from src.common.gcs_uri import gcs_uri_problem


def fid_weights_problem(value: str) -> str | None:
    if not value:
        return None
    problem = gcs_uri_problem(value, "fid_weights_uri")
    if problem or not value.endswith((".pth", ".pt")):
        return (
            f"fid_weights_uri={value!r}: pass gs://BUCKET/OBJECT.pth holding torchvision's "
            "inception_v3 weights, or leave it empty for no FID"
        )
    return None


def checkpoint_root_problem(value: str) -> str | None:
    if not value or value.startswith("/"):
        return None
    if value.startswith("gs://") and not gcs_uri_problem(value, "checkpoint_root"):
        return None
    return (
        f"checkpoint_root={value!r}: pass a gs://BUCKET/FOLDER (or an absolute path) for this "
        "run's checkpoints, or leave it empty to keep them beside the model artifact"
    )


def resume_from_problem(value: str) -> str | None:
    if not value:
        return None
    named = value.startswith("/") or not gcs_uri_problem(value, "resume_from")
    if named and value.endswith("/checkpoint.pt"):
        return None
    return (
        f"resume_from={value!r}: pass the checkpoint.pt of a trained model folder, "
        "gs://BUCKET/.../checkpoint.pt or /path/.../checkpoint.pt, or leave it empty"
    )
