"""Step 3: train a Lightweight GAN on the cleansed images."""

from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from src.build.embedded_code import project_component
from src.build.images import GAN


@project_component(base_image=GAN.image, packages=GAN.lock())
def train_gan(
    images: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    training_report: Output[HTML],
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
    train_processes: int,
    checkpoint_root: str,
    resume_from: str,
):
    """Trains lightweight-gan's networks; resumes from a checkpoint in `model` on retry.

    Args:
        images: output of cleanse_images.
        model: checkpoint.pt (full state), model_config.json, upstream/ export,
            progress/ frames and animation, tensorboard/ event files.
        metrics: final losses, steps, steps per second, device.
        training_report: samples from fixed latents over training, loss charts.
    """
    values = dict(locals())
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.gan.training.task import train_task

    configure_logging()
    outputs = train_task(Path(images.path), Path(model.path), model.uri, values)
    model.metadata.update(outputs.metadata)
    for name, value in outputs.metrics.items():
        metrics.log_metric(name, value)
    Path(training_report.path).write_text(outputs.page)
    write_metrics_file(metrics)
