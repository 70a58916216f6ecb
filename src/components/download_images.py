"""Step 1: download an image set from GCS into a Dataset."""

from kfp.dsl import Dataset, Output

from src.build.embedded_code import project_component
from src.build.images import DATA_IMAGE, DATA_PACKAGES


@project_component(base_image=DATA_IMAGE, packages=DATA_PACKAGES)
def download_images(
    source_uri: str,
    images: Output[Dataset],
    download_workers: int = 32,
    max_objects: int = 200_000,
    max_bytes: int = 50 * 1024**3,
):
    """Downloads a gs:// prefix of images, or one .zip/.tar/.tar.gz archive.

    Args:
        images: folder with `images/` and `manifest.json` (names, generations, checksums).
        max_objects: refuse sources with more images than this.
        max_bytes: refuse sources larger than this.
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.step_logging import configure_logging
    from src.data.download import DownloadLimits, download_dataset

    configure_logging()
    result = download_dataset(
        source_uri,
        Path(images.path),
        workers=download_workers,
        limits=DownloadLimits(max_objects=max_objects, max_bytes=max_bytes),
    )
    images.metadata.update(result.metadata())
    images.metadata["work_seconds"] = time.monotonic() - started
