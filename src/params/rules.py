"""Checks that know lightweight-gan's constraints (generic ones: checks.py; the cleanse
step's own: cleanse_rules.py, which training does not ship).

Each returns None when the value is fine, else the problem and its fix.
"""

from __future__ import annotations

import math
import re

from src.params.checks import split_list

AUG_TYPES = ("color", "cutout", "offset", "translation")  # lightweight-gan's DiffAugment kinds
MAX_IMAGE_SIZE = 1024


def image_size_problem(value: int) -> str | None:
    """lightweight-gan needs a power of two of at least 32."""
    if value < 32 or value > MAX_IMAGE_SIZE or not math.log2(value).is_integer():
        return (
            f"image_size={value} is not allowed: lightweight-gan needs a power of two "
            f"from 32 to {MAX_IMAGE_SIZE} (32, 64, 128, 256, 512, 1024)"
        )
    return None


def aug_prob_problem(value: float) -> str | None:
    if value == -1.0 or 0.0 <= value <= 1.0:
        return None
    return f"aug_prob={value}: use a probability from 0 to 1, or -1 for upstream's automatic value"


def aug_types_problem(text: str) -> str | None:
    unknown = [kind for kind in split_list(text) if kind not in AUG_TYPES]
    if unknown:
        return (
            f"aug_types={text!r} has unknown kind(s) {', '.join(unknown)}: use a comma-separated "
            f"list of {', '.join(AUG_TYPES)}"
        )
    return None


def attn_res_layers_problem(text: str) -> str | None:
    """Syntax only; `cross_problems` checks the values against image_size."""
    if any(not re.fullmatch(r"\d+", part) for part in split_list(text)):
        return (
            f"attn_res_layers={text!r} is not a comma-separated list of resolutions: "
            'pass for example "32" or "32,64", or "" for no attention'
        )
    return None


def attention_problem(attn_res_layers: str, image_size: int) -> str | None:
    """Attention resolutions are feature-map sizes: powers of two from 4 to image_size."""
    if attn_res_layers_problem(attn_res_layers):
        return None  # reported on its own
    bad = [
        part
        for part in split_list(attn_res_layers)
        if not 4 <= int(part) <= image_size or int(part) & (int(part) - 1)
    ]
    if bad:
        return (
            f"attn_res_layers={attn_res_layers!r} has {', '.join(bad)}: use powers of two from 4 "
            f"to image_size={image_size}, for example 32"
        )
    return None


def dual_contrast_problem(dual_contrast_loss: bool, disc_output_size: int) -> str | None:
    if dual_contrast_loss and disc_output_size > 1:
        return (
            "dual_contrast_loss needs disc_output_size=1: set disc_output_size to 1 "
            "or turn dual_contrast_loss off"
        )
    return None


def channels_problem(transparent: bool, greyscale: bool) -> str | None:
    if transparent and greyscale:
        return "transparent and greyscale cannot both be on: choose RGBA or one grey channel"
    return None


def enough_images_problem(image_count: int, batch_size: int, processes: int = 1) -> str | None:
    """Upstream's loader drops the last partial batch and cycles forever: fewer images hang it.

    `image_count` is per training process; each of `processes` needs a full batch.
    """
    if image_count >= batch_size:
        return None
    where = f" per training process ({processes} processes)" if processes > 1 else ""
    return (
        f"only {image_count} usable images{where} for batch_size={batch_size}: add images "
        f"to the source or lower batch_size to at most {max(image_count, 1)}"
    )
