"""Write files so that a reader never sees half of one: temporary name, fsync, rename."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

# Every temporary this project writes is `.NAME` + TEMPORARY_MARK + PID; src/common/stale_files.py
# deletes only names of this form, so another program's `.x.tmp-123` is never touched.
TEMPORARY_MARK = ".lwgan-tmp-"


def temporary_path(path: Path) -> Path:
    """Where this process writes `path` until it is whole."""
    return path.with_name(f".{path.name}{TEMPORARY_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` only once it is whole and on disk."""
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Writes `data` to `path`; the old file stays until the new one is whole."""
    with atomic_open(path) as handle:
        handle.write(data)


def write_json_atomically(path: Path, payload: Any, indent: int | None = 1) -> None:
    """Writes `payload` as sorted JSON; the old file stays until the new one is whole.

    `indent=None` (one line) is several times faster to write for large payloads.
    """
    write_bytes_atomically(path, json.dumps(payload, indent=indent, sort_keys=True).encode())
