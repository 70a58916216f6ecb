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
    seed: int,
    amp: str,
    train_processes: int,
    checkpoint_root: str,
):
    """Trains lightweight-gan's networks; resumes from a checkpoint in `model` on retry.

    Args:
        images: output of cleanse_images.
        model: checkpoint.pt (full state), model_config.json, upstream/ export,
            progress/ frames and animation, tensorboard/ event files.
        metrics: final losses, steps, steps per second, device.
        training_report: samples from fixed latents over training, loss charts.
    """
    import time

    started = time.monotonic()
    from pathlib import Path

    from src.common.artifacts import write_metrics_file
    from src.common.step_logging import configure_logging
    from src.gan.config import TrainConfig
    from src.gan.training import train_gan as run_training
    from src.gan.training_report import training_report_html

    configure_logging()
    config = TrainConfig.from_params(
        image_size=image_size,
        batch_size=batch_size,
        gradient_accumulate_every=gradient_accumulate_every,
        steps=steps,
        learning_rate=learning_rate,
        latent_dim=latent_dim,
        fmap_max=fmap_max,
        attn_res_layers=attn_res_layers,
        aug_prob=aug_prob,
        aug_types=aug_types,
        disc_output_size=disc_output_size,
        dual_contrast_loss=dual_contrast_loss,
        antialias=antialias,
        transparent=transparent,
        greyscale=greyscale,
        save_every=save_every,
        log_every=max(1, min(100, steps // 20)),
        seed=seed,
        amp=amp,
    )
    # Without a root, the artifact's own gs:// URI: a retry of this task gets the same one.
    mirror = checkpoint_root or (model.uri if model.uri.startswith("gs://") else "")
    result = run_training(
        Path(images.path),
        Path(model.path),
        config,
        world_size=train_processes or None,
        checkpoint_root=mirror,
    )
    summary = result.as_dict()
    model.metadata.update(
        {"framework": "lightweight-gan", "step": result.end_step, "image_size": image_size}
    )
    model.metadata["work_seconds"] = time.monotonic() - started
    for key in (
        "end_step",
        "start_step",
        "seconds",
        "steps_per_second",
        "final_d_loss",
        "final_g_loss",
        "nan_restarts",
        "world_size",
    ):
        if summary[key] is not None:
            metrics.log_metric(key, round(float(summary[key]), 4))
    Path(training_report.path).write_text(
        training_report_html(result.history, result.frames, summary)
    )
    write_metrics_file(metrics)
