"""Checks of the parameters that name storage locations (only the first step needs them).

Kept apart from checks.py, which every step ships: these pull in the GCS URI rules.
"""

from __future__ import annotations

import os

from src.common.gcs_uri import gcs_uri_problem

# Folders of the system and of people: a checkpoint_root may be below them, never one of them.
_NOT_A_ROOT = ("/", "/bin", "/boot", "/dev", "/etc", "/gcs", "/home", "/lib", "/lib64", "/media")
_NOT_A_ROOT += ("/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr")
_NOT_A_ROOT += ("/var",)


def local_root_problem(value: str) -> str | None:
    """What is wrong with `value` as a local checkpoint folder: it must be the run's own."""
    folder = value.rstrip("/") or "/"
    parent = os.path.dirname(folder)
    if os.path.normpath(folder) != folder:
        return "write it without '.', '..' or '//'"
    if folder in _NOT_A_ROOT or parent in ("/home", "/gcs"):
        return "it is a system, home or bucket folder, and the run deletes temporaries there"
    return None


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
    if not value:
        return None
    if value.startswith("gs://") and not gcs_uri_problem(value, "checkpoint_root"):
        return None
    why = local_root_problem(value) if value.startswith("/") else "it is not gs:// or absolute"
    if why is None:
        return None
    return (
        f"checkpoint_root={value!r}: {why}. Pass a gs://BUCKET/FOLDER or an absolute path of a "
        "folder for this run's checkpoints alone, or leave it empty to keep them beside the "
        "model artifact"
    )


def resume_from_problem(value: str) -> str | None:
    if not value:
        return None
    named = value.startswith("/") or not gcs_uri_problem(value, "resume_from")
    if named and value.endswith("/checkpoint.pt") and value != "/checkpoint.pt":
        return None
    return (
        f"resume_from={value!r}: pass the checkpoint.pt of a trained model folder, "
        "gs://BUCKET/.../checkpoint.pt or /path/.../checkpoint.pt, or leave it empty"
    )
