"""Step 1: check every pipeline parameter, then download an image set from GCS into a Dataset."""

from kfp.dsl import Dataset, Output

from src.build.embedded_code import project_component
from src.build.images import DATA_IMAGE, DATA_PACKAGES


@project_component(base_image=DATA_IMAGE, packages=DATA_PACKAGES)
def download_images(
    source_uri: str,
    images: Output[Dataset],
    image_size: int = 256,
    batch_size: int = 10,
    gradient_accumulate_every: int = 4,
    steps: int = 10000,
    learning_rate: float = 2e-4,
    latent_dim: int = 256,
    fmap_max: int = 512,
    attn_res_layers: str = "32",
    aug_prob: float = -1.0,
    aug_types: str = "translation,cutout",
    disc_output_size: int = 1,
    dual_contrast_loss: bool = False,
    antialias: bool = False,
    transparent: bool = False,
    save_every: int = 1000,
    seed: int = 0,
    amp: str = "auto",
    num_images: int = 64,
    generator: str = "auto",
    download_workers: int = 32,
    near_duplicate_distance: int = -1,
    train_processes: int = 0,
    fid_weights_uri: str = "",
    checkpoint_root: str = "",
    max_objects: int = 200_000,
    max_bytes: int = 50 * 1024**3,
    max_member_bytes: int = 512 * 1024**2,
    max_compression_ratio: int = 200,
):
    """Checks every pipeline parameter, then downloads a gs:// prefix or one archive.

    It takes every pipeline parameter so that a value typed into a UI fails here,
    in seconds, before any byte is downloaded (the same checks as the CLI).

    Args:
        images: folder with `images/` and `manifest.json` (names, generations, checksums).
        max_objects: refuse sources with more images than this.
        max_bytes: refuse sources (or archives, unpacked) larger than this.
        max_member_bytes: drop archive members larger than this, unpacked.
        max_compression_ratio: drop archive members that expand more than this.
    """
    values = dict(locals())
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.step_logging import configure_logging
    from src.data.download import DownloadLimits, download_dataset
    from src.params.schema import BY_NAME
    from src.params.values import check_values

    configure_logging()
    check_values({name: values[name] for name in BY_NAME})
    limits = DownloadLimits(max_objects, max_bytes, max_member_bytes, max_compression_ratio)
    result = download_dataset(
        source_uri, Path(images.path), workers=download_workers, limits=limits
    )
    images.metadata.update(result.metadata())
    images.metadata["work_seconds"] = time.monotonic() - started
