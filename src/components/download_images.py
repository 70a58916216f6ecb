"""Step 1: download an image set from GCS into a Dataset."""

from kfp.dsl import Dataset, Output

from src.embedded_code import project_component
from src.runtime import DATA_IMAGE, DATA_PACKAGES


@project_component(base_image=DATA_IMAGE, packages=DATA_PACKAGES)
def download_images(
    source_uri: str,
    images: Output[Dataset],
    workers: int = 32,
    max_objects: int = 200_000,
    max_bytes: int = 50 * 1024**3,
):
    """Downloads a gs:// prefix of images, or one .zip/.tar/.tar.gz archive.

    Args:
        source_uri: gs://BUCKET/PREFIX of image objects, or of a single archive object.
        images: folder with `images/` and `manifest.json` (names, generations, checksums).
        workers: parallel downloads.
        max_objects: refuse sources with more images than this.
        max_bytes: refuse sources larger than this.
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.gcs_download import DownloadLimits, download_dataset
    from src.step_logging import configure_logging

    configure_logging()
    result = download_dataset(
        source_uri,
        Path(images.path),
        workers=workers,
        limits=DownloadLimits(max_objects=max_objects, max_bytes=max_bytes),
    )
    images.metadata.update(result.metadata())
    images.metadata["work_seconds"] = time.monotonic() - started
