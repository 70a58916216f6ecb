"""A cleansed image set as one file: `images.npy` (uint8 [N, H, W, C]) and `index.json`.

One file crosses a step boundary in one request (KFP's launcher copies artifact
folders file by file; on Vertex each file is an object behind a FUSE mount),
`np.load(..., mmap_mode="r")` maps it without decoding, and it is written row by
row behind a fixed-size header, so the writer's memory stays flat as sets grow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ARRAY_NAME = "images.npy"
INDEX_NAME = "index.json"


def has_array(folder: Path) -> bool:
    return (folder / ARRAY_NAME).is_file() and (folder / INDEX_NAME).is_file()


def load_array(folder: Path, mmap_mode: str = "r") -> tuple[np.ndarray, list[str]]:
    """The images [N, H, W, C] (memory-mapped) and their names.

    `mmap_mode="c"` maps them copy-on-write: writable for torch, yet every process
    that maps the file shares one copy in the page cache.
    """
    index = json.loads((folder / INDEX_NAME).read_text())
    array = np.load(folder / ARRAY_NAME, mmap_mode=mmap_mode)
    if list(array.shape) != index["shape"]:
        raise ValueError(
            f"{folder}: {ARRAY_NAME} is {array.shape}, {INDEX_NAME} says {index['shape']}"
        )
    return array, index["names"]
