"""Turn typed-in values into checked pipeline arguments, reporting every problem at once."""

from __future__ import annotations

import argparse
from typing import Any

from src.common.errors import ConfigError
from src.params import limits, rules
from src.params.schema import BY_NAME, PARAMS

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_key_value(text: str) -> tuple[str, str]:
    """`"steps=500"` -> `("steps", "500")`, for argparse's `type=`."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), value


def coerce_value(name: str, value: Any, kind: type) -> Any:
    """Converts a command-line string to the parameter's type, or raises ConfigError."""
    if not isinstance(value, str):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
    try:
        if kind is bool:
            return _BOOL[value.strip().lower()]
        return kind(value)
    except (KeyError, ValueError):
        hint = " (true or false)" if kind is bool else ""
        raise ConfigError(f"{name}={value!r} is not a valid {kind.__name__}{hint}") from None


def value_problems(values: dict[str, Any]) -> list[str]:
    """Every problem with typed `values`: each given value alone, then pairs that must agree."""
    problems = [
        problem
        for name, value in values.items()
        if BY_NAME[name].check and (problem := BY_NAME[name].check(value))
    ]
    if "attn_res_layers" in values and "image_size" in values:
        problems.append(rules.attention_problem(values["attn_res_layers"], values["image_size"]))
    if "dual_contrast_loss" in values and "disc_output_size" in values:
        problems.append(
            rules.dual_contrast_problem(values["dual_contrast_loss"], values["disc_output_size"])
        )
    if "num_images" in values and "image_size" in values:
        problems.append(limits.generated_images_problem(values["num_images"], values["image_size"]))
    if "transparent" in values and "greyscale" in values:
        problems.append(rules.channels_problem(values["transparent"], values["greyscale"]))
    return [problem for problem in problems if problem]


def check_values(values: dict[str, Any]) -> None:
    """Raises one ConfigError listing every problem in typed `values`."""
    problems = value_problems(values)
    if problems:
        raise ConfigError.from_problems(problems)


def typed_values(
    given: dict[str, Any], defaults: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`defaults` overridden by `given` (strings or values), typed and checked.

    Returns the values and every problem: unknown names, values of the wrong type,
    bad values and missing required parameters.
    """
    problems = [
        f"unknown pipeline parameter {name!r}: valid names are {', '.join(BY_NAME)}"
        for name in given
        if name not in BY_NAME
    ]
    typed = dict(defaults)
    for name, value in given.items():
        if name in BY_NAME:
            try:
                typed[name] = coerce_value(name, value, BY_NAME[name].kind)
            except ConfigError as error:
                problems.append(str(error))
                typed.pop(name, None)
    problems += [
        f"{p.name} is required: pass --param {p.name}=..."
        for p in PARAMS
        if p.required and p.name not in typed and p.name not in given
    ]
    return typed, problems + value_problems(typed)


def resolve(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Like `typed_values`, raising one ConfigError that lists every problem."""
    typed, problems = typed_values(given, defaults)
    if problems:
        raise ConfigError.from_problems(problems)
    return typed
