"""Every pipeline parameter, declared once: name, type, defaults and check.

The pipeline's signature, the CLI's `--param` handling, the in-pipeline check and
the README's table come from `PARAMS` (what each one means, for people, is in
descriptions.py: the steps check values and need not ship the prose); tests hold
the component signatures and the training config equal to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.params import checks, cleanse_rules, limits, rules, uri_checks

REQUIRED = None  # `compiled` value of a parameter the user must give (the UIs ask for it)
SAMPLE_SOURCE = "gs://lwgan-sample/digits/"  # the bundled set, served by the local emulator


@dataclass(frozen=True)
class Param:
    """One pipeline parameter.

    `compiled` is the default in the compiled YAML (REQUIRED: none), `local` the
    default of `python -m src.pipeline run`, sized for a laptop CPU. A value of a
    `names_object` parameter (a gs:// URI) must name a readable object: the first
    step checks that too, before downloading.
    """

    name: str
    kind: type
    compiled: Any
    check: Callable[[Any], str | None] | None = None
    local: Any = REQUIRED
    names_object: bool = False

    @property
    def required(self) -> bool:
        return self.compiled is REQUIRED

    @property
    def local_default(self) -> Any:
        return self.compiled if self.local is REQUIRED else self.local


PARAMS: tuple[Param, ...] = (
    Param("source_uri", str, REQUIRED, lambda v: uri_checks.gcs_uri_problem(v, "source_uri"), local=SAMPLE_SOURCE),
    Param("image_size", int, 256, rules.image_size_problem, local=32),
    Param("batch_size", int, 10, checks.positive("batch_size"), local=4),
    Param("gradient_accumulate_every", int, 4, checks.positive("gradient_accumulate_every"), local=1),
    Param("steps", int, 10000, limits.steps_problem, local=20),
    Param("learning_rate", float, 2e-4, checks.positive("learning_rate")),
    Param("latent_dim", int, 256, checks.positive("latent_dim"), local=64),
    Param("fmap_max", int, 512, checks.positive("fmap_max"), local=32),
    Param("attn_res_layers", str, "32", rules.attn_res_layers_problem, local=""),
    Param("aug_prob", float, -1.0, rules.aug_prob_problem),
    Param("aug_types", str, "translation,cutout", rules.aug_types_problem),
    Param("disc_output_size", int, 1, checks.one_of("disc_output_size", checks.DISC_OUTPUT_SIZES)),
    Param("dual_contrast_loss", bool, False),
    Param("antialias", bool, False),
    Param("transparent", bool, False),
    Param("greyscale", bool, False),
    Param("save_every", int, 1000, checks.positive("save_every"), local=10),
    Param("checkpoint_minutes", float, 10.0, checks.between("checkpoint_minutes", 0, 1440, "0 (only save_every) to 1440")),
    Param("seed", int, 0, checks.between("seed", 0, checks.MAX_SEED, f"0 to {checks.MAX_SEED}")),
    Param("amp", str, "auto", checks.one_of("amp", checks.AMP_MODES)),
    Param("num_images", int, 64, checks.positive("num_images"), local=16),
    Param("generator", str, "auto", checks.one_of("generator", checks.GENERATOR_CHOICES)),
    Param("download_workers", int, 32, checks.positive("download_workers"), local=8),
    Param("near_duplicate_distance", int, -1, cleanse_rules.near_duplicate_problem),
    Param("train_processes", int, 0, limits.train_processes_problem),
    Param("fid_weights_uri", str, "", uri_checks.fid_weights_problem, names_object=True),
    Param("checkpoint_root", str, "", uri_checks.checkpoint_root_problem),
    Param("resume_from", str, "", uri_checks.resume_from_problem, names_object=True),
)  # fmt: skip

BY_NAME: dict[str, Param] = {param.name: param for param in PARAMS}
# What a local run on the bundled sample set (no source_uri given) takes unless told otherwise:
# its digits are grey, so it trains one channel. A source of one's own keeps the local defaults.
SAMPLE_DEFAULTS: dict[str, Any] = {"greyscale": True}


def compiled_defaults() -> dict[str, Any]:
    """Defaults of the compiled pipeline (required parameters left out)."""
    return {p.name: p.compiled for p in PARAMS if not p.required}


def local_defaults(sample: bool = False) -> dict[str, Any]:
    """Defaults of a local run: every parameter has one; `sample`: a run on the bundled set."""
    return {p.name: p.local_default for p in PARAMS} | (SAMPLE_DEFAULTS if sample else {})
