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
        gallery: generated beside real images, the interpolation, scores explained.
        metrics: SWD against real images with its floor and noise level, images per second.
        interpolation_steps: frames of a latent interpolation strip (0: none).
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.gan.fid import FidScorer, fid_between_folders
    from src.gan.gallery import gallery_html
    from src.gan.quality import load_pair, swd_with_references
    from src.gan.sampling import generate_images as run_generation

    configure_logging()
    scorer = FidScorer.from_uri(fid_weights_uri) if fid_weights_uri else None  # fail early
    out_dir, real_dir = Path(samples.path), Path(real_images.path)
    result = run_generation(
        Path(model.path),
        out_dir,
        count=num_images,
        seed=seed,
        which=generator,
        interpolation_steps=interpolation_steps,
    )
    scores = swd_with_references(*load_pair(real_dir, out_dir, fake_pattern="image_*.png"))
    if scorer is not None:
        scores["fid"], scores["fid_real_images"] = fid_between_folders(scorer, real_dir, out_dir)
    samples.metadata.update({**result.metadata(), **scores})
    samples.metadata["work_seconds"] = time.monotonic() - started
    metrics.log_metric("swd_vs_real", round(scores["swd"], 4))
    metrics.log_metric("swd_real_floor", round(scores["real_floor"], 4))
    metrics.log_metric("swd_noise", round(scores["noise"], 4))
    metrics.log_metric("images_per_second", round(result.images_per_second, 2))
    metrics.log_metric("num_images", result.count)
    if scorer is not None:
        metrics.log_metric("fid_vs_real", round(scores["fid"], 3))
        metrics.log_metric("fid_real_images", scores["fid_real_images"])
    page = gallery_html(out_dir, real_dir, result.files, scores, result.metadata(), samples.uri)
    Path(gallery.path).write_text(page)
    write_metrics_file(metrics)
