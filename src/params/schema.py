"""Every pipeline parameter, declared once: name, type, defaults, help and check.

The pipeline's signature and docstring, the CLI's `--param` handling and
`run --help`, the in-pipeline check and the README's table come from `PARAMS`;
tests hold the component signatures and the training config equal to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.params import checks

REQUIRED = None  # `compiled` value of a parameter the user must give (the UIs ask for it)
SAMPLE_SOURCE = "gs://lwgan-sample/digits/"  # the bundled set, served by the local emulator


@dataclass(frozen=True)
class Param:
    """One pipeline parameter.

    `compiled` is the default in the compiled YAML (REQUIRED: none), `local` the
    default of `python -m src.pipeline run`, sized for a laptop CPU.
    """

    name: str
    kind: type
    compiled: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    local: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.compiled is REQUIRED

    @property
    def local_default(self) -> Any:
        return self.compiled if self.local is REQUIRED else self.local


PARAMS: tuple[Param, ...] = (
    Param("source_uri", str, REQUIRED,
          "gs://BUCKET/PREFIX of image objects, or of one .zip/.tar/.tar.gz archive object",
          lambda v: checks.gcs_uri_problem(v, "source_uri"), local=SAMPLE_SOURCE),
    Param("image_size", int, 256, "side of the training images in pixels: a power of two, 32 to 1024",
          checks.image_size_problem, local=32),
    Param("batch_size", int, 10,
          "images per micro-batch (per training process); the cleanse step fails if fewer "
          "images survive", checks.positive("batch_size"), local=4),
    Param("gradient_accumulate_every", int, 4, "micro-batches per optimizer step",
          checks.positive("gradient_accumulate_every"), local=1),
    Param("steps", int, 10000, "training steps", checks.positive("steps"), local=20),
    Param("learning_rate", float, 2e-4, "Adam learning rate of G and D",
          checks.positive("learning_rate")),
    Param("latent_dim", int, 256, "size of the latent vector", checks.positive("latent_dim"),
          local=64),
    Param("fmap_max", int, 512, "widest feature map", checks.positive("fmap_max"), local=32),
    Param("attn_res_layers", str, "32",
          'comma-separated resolutions with linear attention, e.g. "32,64"; "" for none',
          checks.attn_res_layers_problem, local=""),
    Param("aug_prob", float, -1.0,
          "differentiable augmentation probability, 0 to 1; -1: upstream's automatic value",
          checks.aug_prob_problem),
    Param("aug_types", str, "translation,cutout",
          f"comma-separated augmentations: {', '.join(checks.AUG_TYPES)}", checks.aug_types_problem),
    Param("disc_output_size", int, 1, "discriminator output grid: 1 or 5",
          checks.one_of("disc_output_size", checks.DISC_OUTPUT_SIZES)),
    Param("dual_contrast_loss", bool, False, "dual contrastive loss (needs disc_output_size=1)"),
    Param("antialias", bool, False, "blur when up- and downsampling"),
    Param("transparent", bool, False, "keep alpha: cleanse to RGBA and train a 4-channel GAN"),
    Param("greyscale", bool, False, "cleanse to one grey channel and train a 1-channel GAN"),
    Param("save_every", int, 1000, "checkpoint interval in steps", checks.positive("save_every"),
          local=10),
    Param("seed", int, 0, "training and generation seed",
          checks.between("seed", 0, checks.MAX_SEED, f"0 to {checks.MAX_SEED}")),
    Param("amp", str, "auto",
          "mixed precision: auto (bf16 where the GPU has it, else fp16; off on CPUs), bf16, fp16, off",
          checks.one_of("amp", checks.AMP_MODES)),
    Param("num_images", int, 64, "images to generate", checks.positive("num_images"), local=16),
    Param("generator", str, "auto",
          "raw, ema, or auto (EMA once upstream has averaged it, after step 20,000)",
          checks.one_of("generator", checks.GENERATOR_CHOICES)),
    Param("download_workers", int, 32, "parallel downloads", checks.positive("download_workers"),
          local=8),
    Param("near_duplicate_distance", int, -1,
          "dHash bit distance under which images count as near-duplicates; -1: off",
          checks.near_duplicate_problem),
    Param("train_processes", int, 0,
          "data-parallel training processes; 0: one per GPU of the train task (1 on a CPU)",
          checks.at_least("train_processes", 0, "0 (one per GPU) or a positive count")),
    Param("fid_weights_uri", str, "",
          "gs://.../inception_v3_google-*.pth (torchvision's weights) to also log FID; empty: SWD only",
          checks.fid_weights_problem),
    Param("checkpoint_root", str, "",
          "gs:// folder (or absolute path) that keeps the latest checkpoint so that retries and "
          "resumed runs continue; empty: the model artifact's own URI. One folder per training run",
          checks.checkpoint_root_problem),
)  # fmt: skip

BY_NAME: dict[str, Param] = {param.name: param for param in PARAMS}


def compiled_defaults() -> dict[str, Any]:
    """Defaults of the compiled pipeline (required parameters left out)."""
    return {p.name: p.compiled for p in PARAMS if not p.required}


def local_defaults() -> dict[str, Any]:
    """Defaults of a local run: every parameter has one."""
    return {p.name: p.local_default for p in PARAMS}
