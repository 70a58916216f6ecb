"""A copy of the latest checkpoint where every attempt of the train task can reach it.

The Model artifact's local folder is not enough: on open-source KFP it is an
emptyDir that the launcher uploads only after success, so a preempted or
failed attempt leaves nothing for its retry. After each atomic local save the
checkpoint is copied to `root` (a gs:// folder, written through the storage
client, or a local folder); an attempt that starts with an empty model folder
fetches it first and resumes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from src.common.atomic_files import atomic_open
from src.common.gcs_uri import parse_gcs_uri
from src.common.retry import with_retries
from src.gan import random_state

log = logging.getLogger(__name__)


class CheckpointMirror:
    """Copies `name` files between a model folder and `root` (gs://bucket/prefix or a path)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._bucket = None
        if self.root.startswith("gs://"):
            bucket, prefix = parse_gcs_uri(self.root + "/", "checkpoint_root")
            from google.cloud import storage  # only GCS mirrors need the client

            self._bucket = storage.Client().bucket(bucket)
            self._prefix = prefix.rstrip("/")

    def _blob(self, name: str):
        return self._bucket.blob(f"{self._prefix}/{name}")

    def fetch(self, model_dir: Path, name: str) -> bool:
        """Copies `root/name` into `model_dir` unless it is already there; True if copied."""
        target = model_dir / name
        if target.exists():
            return False
        model_dir.mkdir(parents=True, exist_ok=True)
        if self._bucket is None:
            source = Path(self.root) / name
            if not source.is_file():
                return False
            with atomic_open(target) as handle, open(source, "rb") as data:
                shutil.copyfileobj(data, handle)
        else:
            blob = self._blob(name)
            if not with_retries(blob.exists, what=f"lookup of {self.root}/{name}"):
                return False
            with atomic_open(target) as handle:
                with_retries(
                    lambda: _download(blob, handle), what=f"download of {self.root}/{name}"
                )
        log.info("fetched %s/%s to resume from it", self.root, name)
        return True

    def push(self, model_dir: Path, name: str) -> None:
        """Copies `model_dir/name` to `root`; the old copy stays until the new one is whole."""
        source = model_dir / name
        if self._bucket is None:
            folder = Path(self.root)
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_open(folder / name) as handle, open(source, "rb") as data:
                shutil.copyfileobj(data, handle)
            return
        blob = self._blob(name)
        # The storage client draws from Python's `random` (upload boundaries, retry jitter),
        # as upstream's augmentation does.
        with random_state.preserved():
            with_retries(
                lambda: blob.upload_from_filename(str(source)), what=f"upload to {self.root}/{name}"
            )


def _download(blob, handle) -> None:
    handle.seek(0)
    handle.truncate()
    blob.download_to_file(handle)


def report_mirror(root: str, artifact_uri: str) -> None:
    """Says in the step's first lines whether a retried attempt will find the checkpoints."""
    if root:
        log.info(
            "checkpoints are mirrored to %s: a retried attempt resumes from the last one", root
        )
        return
    log.warning(
        "no checkpoint mirror: the model artifact is at %s (not gs://) and checkpoint_root is "
        "empty, so a retried or preempted attempt starts again at step 0; set "
        "checkpoint_root=gs://BUCKET/FOLDER to resume instead",
        artifact_uri,
    )
