"""Writes the one-file image set of image_array.py, row by row (only the cleanse step needs it)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from src.common.atomic_files import temporary_path, write_json_atomically
from src.common.image_array import ARRAY_NAME, INDEX_NAME

HEADER_BYTES = 128  # .npy header, padded: rewritten in place once the row count is known


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header for uint8 C-order data of `shape`, exactly HEADER_BYTES long."""
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    body = text.ljust(HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


class ArrayWriter:
    """Appends equal-shape uint8 images to `folder/images.npy`; nothing appears until close().

    The index records the SHA-256 of the rows in order, which is what a trained
    model's checkpoint remembers of its data. Until then the rows go to
    the temporary name of atomic_files.py, which
    src/common/stale_files.py removes once this process is gone.
    """

    def __init__(self, folder: Path, row_shape: tuple[int, int, int]) -> None:
        self.folder, self.row_shape, self.names = folder, tuple(row_shape), []
        self.partial = temporary_path(folder / ARRAY_NAME)
        self.handle = open(self.partial, "wb")  # noqa: SIM115 (held across appends; close() ends it)
        self.handle.write(npy_header((0, *self.row_shape)))
        self.digest = hashlib.sha256()

    def append(self, row: np.ndarray, name: str) -> None:
        if row.shape != self.row_shape or row.dtype != np.uint8:
            raise ValueError(f"{name}: {row.shape} {row.dtype}, expected {self.row_shape} uint8")
        data = np.ascontiguousarray(row).data
        self.handle.write(data)
        self.digest.update(data)
        self.names.append(name)

    def close(self, extra: dict[str, Any] | None = None) -> None:
        """Completes the header, then publishes the array and its index."""
        self.handle.seek(0)
        self.handle.write(npy_header((len(self.names), *self.row_shape)))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.partial, self.folder / ARRAY_NAME)
        index = {
            "shape": [len(self.names), *self.row_shape],
            "names": self.names,
            "sha256": self.digest.hexdigest(),
        }
        write_json_atomically(self.folder / INDEX_NAME, index | (extra or {}), indent=None)

    def abandon(self) -> None:
        """Deletes the partial file, also when closing it fails: a full disk fails the flush again."""
        with contextlib.suppress(OSError):  # the file is deleted next: its content is moot
            self.handle.close()
        self.partial.unlink(missing_ok=True)
