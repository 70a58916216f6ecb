"""Early checks of run parameters, with messages that name the problem and the fix."""

from __future__ import annotations

import math
import re


class ConfigError(ValueError):
    """A run parameter is invalid; the message says how to fix it."""


_GCS_URI = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(?P<prefix>.*))?$")


def parse_gcs_uri(uri: str) -> tuple[str, str]:
    """Splits `gs://bucket/prefix` into bucket and prefix; the prefix must not be empty."""
    match = _GCS_URI.match(uri or "")
    if not match:
        raise ConfigError(
            f"source {uri!r} is not a GCS URI: pass one of the form gs://BUCKET/PREFIX "
            "(a bucket name of 3-63 lower-case letters, digits, dots, dashes or underscores, "
            "then the folder or archive that holds the images)"
        )
    prefix = match.group("prefix") or ""
    if not prefix.strip("/"):
        raise ConfigError(
            f"source {uri!r} has an empty prefix: name the folder or archive inside the bucket, "
            f"for example gs://{match.group('bucket')}/images/"
        )
    return match.group("bucket"), prefix


def check_image_size(image_size: int) -> None:
    """lightweight-gan needs a power of two of at least 32."""
    if image_size < 32 or not math.log2(image_size).is_integer():
        raise ConfigError(
            f"image_size={image_size} is not allowed: lightweight-gan needs a power of two "
            "of at least 32 (32, 64, 128, 256, 512, 1024)"
        )


def check_positive(name: str, value: float) -> None:
    """Counts, steps and rates must be above zero."""
    if value <= 0:
        raise ConfigError(f"{name}={value} must be positive: pass a value above 0")


def check_enough_images(image_count: int, batch_size: int, processes: int = 1) -> None:
    """Upstream's loader drops the last partial batch and cycles forever: fewer images hang it.

    `image_count` is per training process; each of `processes` needs a full batch.
    """
    if image_count < batch_size:
        where = f" per training process ({processes} processes)" if processes > 1 else ""
        raise ConfigError(
            f"only {image_count} usable images{where} for batch_size={batch_size}: add images "
            f"to the source or lower batch_size to at most {max(image_count, 1)}"
        )
