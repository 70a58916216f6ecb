"""How the Dataset folders are laid out, and how a reader knows a download is complete.

A downloaded set is a few tar shards of the objects' raw bytes plus the manifest
(which names each object's shard and byte offset); a cleansed set is one array
file (src/common/image_array.py). Few large files cross a step boundary cheaply:
KFP's launcher copies artifact folders one file at a time, and on Vertex AI each
file is an object behind a FUSE mount.
"""

from __future__ import annotations

import errno
import io
import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "manifest.json"  # written last: its presence marks a complete download
SHARDS_DIR = "shards"
SHARD_BYTES = 256 * 1024**2  # a shard closes once it holds this much


class DownloadError(RuntimeError):
    """The source cannot be downloaded; the message says what to do."""


class OutputWriteError(RuntimeError):
    """A step cannot write its own files (full disk, quota, read-only): it fails, never skips."""


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def output_write_error(error: OSError, path: Path | str, needed: int = 0) -> OutputWriteError:
    """The message for a failed write of our own: the path, the size needed if known, the fix."""
    size = f"; the step writes about {needed / 1e6:.1f} MB there" if needed else ""
    fix = (
        "make it writable"
        if error.errno == errno.EROFS
        else "free space or give the step a larger disk"
    )
    return OutputWriteError(f"cannot write {path} ({error.strerror or error}{size}): {fix}")


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: a whole file, or `size` bytes at `offset` in a shard."""

    path: str
    relative: str
    offset: int = 0
    size: int = -1  # -1: the whole file

    def open(self):
        if self.size < 0:
            return open(self.path, "rb")
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            return io.BytesIO(handle.read(self.size))

    def is_empty(self) -> bool:
        return (Path(self.path).stat().st_size if self.size < 0 else self.size) == 0


def require_complete(dataset_dir: Path) -> Path:
    """A finished download's folder; refuses one without its manifest."""
    if not (dataset_dir / MANIFEST_NAME).is_file():
        raise DownloadError(
            f"{dataset_dir} has no {MANIFEST_NAME}: the download did not finish; rerun the "
            "download step"
        )
    return dataset_dir


def raw_inputs(dataset_dir: Path) -> list[InputFile]:
    """Every downloaded object as a slice of its shard, in name order.

    Entries become InputFiles as the manifest is parsed, sharing one path string
    per shard: its dicts are never all held at once.
    """
    shards: dict[str, str] = {}

    def entry(fields: dict):
        if "shard" not in fields:
            return fields
        name = fields["shard"]
        if name not in shards:
            shards[name] = str(dataset_dir / name)
        return InputFile(shards[name], fields["path"], fields["offset"], fields["size"])

    text = (require_complete(dataset_dir) / MANIFEST_NAME).read_text()
    objects = json.loads(text, object_hook=entry)["objects"]
    return sorted(objects, key=lambda item: item.relative)
