"""Step 1: check every pipeline parameter, then download an image set from GCS into a Dataset."""

from kfp.dsl import Dataset, Output

from src.build.embedded_code import project_component
from src.build.images import DATA


@project_component(base_image=DATA.image, packages=DATA.lock())
def download_images(
    source_uri: str,
    images: Output[Dataset],
    image_size: int,
    batch_size: int,
    gradient_accumulate_every: int,
    steps: int,
    learning_rate: float,
    latent_dim: int,
    fmap_max: int,
    attn_res_layers: str,
    aug_prob: float,
    aug_types: str,
    disc_output_size: int,
    dual_contrast_loss: bool,
    antialias: bool,
    transparent: bool,
    greyscale: bool,
    save_every: int,
    checkpoint_minutes: float,
    seed: int,
    amp: str,
    num_images: int,
    generator: str,
    download_workers: int,
    near_duplicate_distance: int,
    train_processes: int,
    fid_weights_uri: str,
    checkpoint_root: str,
    resume_from: str,
    max_objects: int = 200_000,
    max_bytes: int = 50 * 1024**3,
    max_member_bytes: int = 512 * 1024**2,
    max_compression_ratio: int = 200,
):
    """Checks every pipeline parameter, then downloads a gs:// prefix or one archive.

    It takes every pipeline parameter so that a value typed into a UI fails here,
    in seconds, before any byte is downloaded (the same checks as the CLI, and
    that every object a parameter names, such as fid_weights_uri, is readable).

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
    from src.data.download import DownloadLimits, check_parameters, download_dataset
    from src.params.schema import BY_NAME

    configure_logging()
    check_parameters({name: values[name] for name in BY_NAME})
    limits = DownloadLimits(max_objects, max_bytes, max_member_bytes, max_compression_ratio)
    result = download_dataset(
        source_uri, Path(images.path), workers=download_workers, limits=limits
    )
    images.metadata.update(result.metadata())
    images.metadata["work_seconds"] = time.monotonic() - started
