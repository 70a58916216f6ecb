"""The pipeline's parameters and their types, for `--param KEY=VALUE` and submission."""

from __future__ import annotations

import inspect
from typing import Any

from src.validation import ConfigError, check_image_size, check_positive, parse_gcs_uri

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_POSITIVE = (
    "steps",
    "batch_size",
    "gradient_accumulate_every",
    "latent_dim",
    "fmap_max",
    "save_every",
    "num_images",
    "download_workers",
    "learning_rate",
)


def parse_key_value(text: str) -> tuple[str, str]:
    """`"steps=500"` -> `("steps", "500")`, for argparse's `type=`."""
    import argparse

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), value


def parameter_types() -> dict[str, type]:
    """Name -> Python type of every pipeline parameter, read from the pipeline's signature."""
    from src.pipeline import build_pipeline

    pipeline = build_pipeline("local")
    signature = inspect.signature(pipeline.pipeline_func)
    return {name: p.annotation for name, p in signature.parameters.items()}


def coerce_value(name: str, value: Any, kind: type) -> Any:
    """Converts a command-line string to the parameter's type, or explains the problem."""
    if not isinstance(value, str):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind):
            return value
        raise ConfigError(f"parameter {name} must be {kind.__name__}, got {value!r}")
    try:
        if kind is bool:
            return _BOOL[value.strip().lower()]
        return kind(value)
    except (KeyError, ValueError):
        raise ConfigError(f"parameter {name}={value!r} is not a valid {kind.__name__}") from None


def coerce_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Checks names against the pipeline and converts each value to its declared type."""
    types = parameter_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}: valid names are "
            f"{', '.join(sorted(types))}"
        )
    return {name: coerce_value(name, value, types[name]) for name, value in values.items()}


def check_values(typed: dict[str, Any]) -> None:
    """Checks what can be checked before any step runs, for the values that are given."""
    if "source_uri" in typed:
        parse_gcs_uri(typed["source_uri"])
    if "image_size" in typed:
        check_image_size(typed["image_size"])
    for name in _POSITIVE:
        if name in typed:
            check_positive(name, typed[name])
    if str(typed.get("fid_weights_uri", "")).startswith("gs://"):
        parse_gcs_uri(typed["fid_weights_uri"])
    if typed.get("train_processes", 0) < 0:
        raise ConfigError(
            f"train_processes={typed['train_processes']}: use 0 (one per GPU of the train task) "
            "or a positive count"
        )
    if typed.get("dual_contrast_loss") and typed.get("disc_output_size", 1) > 1:
        raise ConfigError(
            "dual_contrast_loss needs disc_output_size=1: set disc_output_size to 1 "
            "or turn dual_contrast_loss off"
        )


def validate_for_submission(values: dict[str, Any]) -> dict[str, Any]:
    """Typed values for a cloud run: source_uri must be given; sizes and counts must make sense."""
    typed = coerce_parameters(values)
    if "source_uri" not in typed:
        raise ConfigError("pass the images to train on: --param source_uri=gs://BUCKET/PREFIX")
    check_values(typed)
    weights = typed.get("fid_weights_uri", "")
    if weights and not weights.startswith("gs://"):
        raise ConfigError(
            f"fid_weights_uri={weights!r} is not on GCS: upload the .pth to a bucket the pipeline "
            "can read and pass gs://BUCKET/OBJECT.pth"
        )
    return typed
