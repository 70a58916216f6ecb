"""A copy of the latest checkpoint, and of what a person watches, where every attempt reaches it.

The Model artifact's local folder is not enough: on open-source KFP it is an
emptyDir that the launcher uploads only after success, so a preempted or
failed attempt leaves nothing for its retry, and nobody sees it while it runs.
After each atomic local save the checkpoint is copied to `root` (a gs:// folder,
written through the storage client, or a local folder), and while training runs
the TensorBoard event files and progress frames follow (`LiveSync`); an attempt
that starts with an empty model folder fetches the checkpoint and the event files
first and resumes. Every request takes the storage client's own retry policy
(uploads too: a checkpoint upload replaces the whole object, so a repeat is safe).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from src.common.atomic_files import atomic_open
from src.common.stale_files import OWNER_MARK
from src.gan import random_state
from src.gan.model_folder import CheckpointError

log = logging.getLogger(__name__)


class CheckpointMirror:
    """Copies `name` files between a model folder and `root` (gs://bucket/prefix or a path)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        if not self.root:  # never the file system's root, nor (as "") the working directory
            raise CheckpointError(f"{root!r}: name a folder of its own")
        self._bucket = None
        if self.root.startswith("gs://"):
            bucket, _, self._prefix = self.root[5:].partition("/")  # checked in the first step
            from google.cloud import storage  # only GCS mirrors need the client

            self._bucket = storage.Client().bucket(bucket)

    def claim(self) -> Path | None:
        """A local root, once known to be this project's (new, empty or marked), else None."""
        root = Path(self.root)
        if self._bucket:
            return None
        if root.is_dir() and not (root / OWNER_MARK).exists() and any(root.iterdir()):
            raise CheckpointError(
                f"checkpoint_root={self.root!r} holds other files: pass a new or empty folder"
            )
        root.mkdir(parents=True, exist_ok=True)
        (root / OWNER_MARK).touch()
        return root

    def _blob(self, name: str):
        return self._bucket.blob(f"{self._prefix}/{name}" if self._prefix else name)

    def location(self, name: str = "") -> str:
        """Where `name` is (or would be) in the mirror, for messages and commands."""
        return f"{self.root}/{name}" if name else self.root

    def names(self, folder: str) -> list[str]:
        """Names below `root/folder`, relative to `root`."""
        if self._bucket is None:
            base = Path(self.root)
            return sorted(
                p.relative_to(base).as_posix() for p in (base / folder).rglob("*") if p.is_file()
            )
        prefix = f"{self._prefix}/{folder}/" if self._prefix else f"{folder}/"
        blobs = self._bucket.list_blobs(prefix=prefix, retry=_retry())
        return sorted(
            blob.name.removeprefix(f"{self._prefix}/" if self._prefix else "") for blob in blobs
        )

    def fetch_folder(self, model_dir: Path, folder: str) -> int:
        """Fetches every file below `root/folder` that `model_dir` lacks; returns how many."""
        return sum(self.fetch(model_dir, name, quiet=True) for name in self.names(folder))

    def fetch(self, model_dir: Path, name: str, quiet: bool = False) -> bool:
        """Copies `root/name` into `model_dir` unless it is already there; True if copied."""
        target = model_dir / name
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        if self._bucket is None:
            source = Path(self.root) / name
            if not source.is_file():
                return False
            with atomic_open(target) as handle, open(source, "rb") as data:
                shutil.copyfileobj(data, handle)
        else:
            blob = self._blob(name)
            if not blob.exists(retry=_retry()):
                return False
            with atomic_open(target) as handle:
                blob.download_to_file(handle, retry=_retry())
        if not quiet:
            log.info("fetched %s/%s to resume from it", self.root, name)
        return True

    def push(self, model_dir: Path, name: str, remote: str | None = None) -> None:
        """Copies `model_dir/name` to `root/remote` (default: the same name); the old copy
        stays until the new one is whole."""
        source, name = model_dir / name, remote or name
        if self._bucket is None:
            target = Path(self.root) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(target) as handle, open(source, "rb") as data:
                shutil.copyfileobj(data, handle)
            return
        blob = self._blob(name)
        # The storage client draws from Python's `random` (upload boundaries, retry jitter),
        # as upstream's augmentation does.
        with random_state.preserved():
            blob.upload_from_filename(str(source), retry=_retry())


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY
