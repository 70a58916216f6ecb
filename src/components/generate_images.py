"""Step 4: generate images with the trained model and score them against the real set."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from src.build.embedded_code import project_component
from src.build.images import GAN


@project_component(base_image=GAN.image, packages=GAN.lock())
def generate_images(
    model: Input[Model],
    real_images: Input[Dataset],
    samples: Output[Artifact],
    gallery: Output[HTML],
    metrics: Output[Metrics],
    num_images: int,
    seed: int,
    generator: str,
    fid_weights_uri: str,
    interpolation_steps: int = 8,
):
    """Writes seeded PNGs, grid.png and a gallery; logs the SWD against real images.

    Args:
        model: output of train_gan.
        real_images: the cleansed set, for the quality score.
        samples: image_XXXX.png files, grid.png, interpolation.png.
        gallery: the images inline, for the pipeline UI.
        metrics: sliced Wasserstein distance (lower is better), images per second.
        interpolation_steps: frames of a latent interpolation strip (0: none).
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.gan.fid import FidScorer, fid_between_folders
    from src.gan.quality import swd_between_folders
    from src.gan.sampling import generate_images as run_generation

    configure_logging()
    scorer = FidScorer.from_uri(fid_weights_uri) if fid_weights_uri else None  # fail early
    out_dir = Path(samples.path)
    result, page = run_generation(
        Path(model.path),
        out_dir,
        count=num_images,
        seed=seed,
        which=generator,
        interpolation_steps=interpolation_steps,
    )
    score = swd_between_folders(Path(real_images.path), out_dir, fake_pattern="image_*.png")
    samples.metadata.update(result.metadata())
    samples.metadata["swd"] = score
    samples.metadata["work_seconds"] = time.monotonic() - started
    metrics.log_metric("swd_vs_real", round(score, 4))
    metrics.log_metric("images_per_second", round(result.images_per_second, 2))
    metrics.log_metric("num_images", result.count)
    if scorer is not None:
        fid, real_count = fid_between_folders(scorer, Path(real_images.path), out_dir)
        samples.metadata["fid"] = fid
        metrics.log_metric("fid_vs_real", round(fid, 3))
        metrics.log_metric("fid_real_images", real_count)
    Path(gallery.path).write_text(page)
    write_metrics_file(metrics)
