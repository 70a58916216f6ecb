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
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.gan.sampling.task import generate_task

    configure_logging()
    outputs = generate_task(
        Path(model.path),
        Path(real_images.path),
        Path(samples.path),
        samples.uri,
        num_images=num_images,
        seed=seed,
        generator=generator,
        fid_weights_uri=fid_weights_uri,
        interpolation_steps=interpolation_steps,
    )
    samples.metadata.update(outputs.metadata)
    for name, value in outputs.metrics.items():
        metrics.log_metric(name, value)
    Path(gallery.path).write_text(outputs.page)
    write_metrics_file(metrics)
