"""How a downloaded Dataset folder is laid out, and how a reader knows it is complete."""

from __future__ import annotations

from pathlib import Path

MANIFEST_NAME = "manifest.json"  # written last: its presence marks a complete download
IMAGES_DIR = "images"


class DownloadError(RuntimeError):
    """The source cannot be downloaded; the message says what to do."""


def require_complete(dataset_dir: Path) -> Path:
    """The images folder of a finished download; refuses one without its manifest."""
    if not (dataset_dir / MANIFEST_NAME).is_file():
        raise DownloadError(
            f"{dataset_dir} has no {MANIFEST_NAME}: the download did not finish; rerun the "
            "download step"
        )
    return dataset_dir / IMAGES_DIR
