"""Generic checks of single values, and the choices the parameters offer.

Each check returns None when the value is fine, else the problem and its fix:
returning text (not raising) lets an entry point collect every problem of a run
at once; `require` turns one into a ConfigError where a single check is wanted.
The rules that know lightweight-gan and the data are in rules.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from src.common.errors import ConfigError

Check = Callable[[Any], "str | None"]

# The project's AMP and generator choices.
AMP_MODES = ("off", "auto", "bf16", "fp16")
GENERATOR_CHOICES = ("auto", "ema", "raw")
DISC_OUTPUT_SIZES = (1, 5)  # upstream asserts disc_output_size in {1, 5}
MAX_SEED = 2**32 - 1  # numpy's seed range


def require(problem: str | None) -> None:
    """Raises ConfigError when a check found a problem."""
    if problem:
        raise ConfigError(problem)


def positive(name: str) -> Check:
    """Counts, steps and rates must be above zero (and finite)."""

    def check(value: float) -> str | None:
        if not value > 0 or not math.isfinite(value):
            return f"{name}={value} must be positive: pass a value above 0"
        return None

    return check


def at_least(name: str, low: int, meaning: str) -> Check:
    def check(value: int) -> str | None:
        return None if value >= low else f"{name}={value}: use {meaning}"

    return check


def between(name: str, low: float, high: float, meaning: str) -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"{name}={value}: use {meaning}"

    return check


def one_of(name: str, choices: tuple) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"{name}={value!r} is not a choice: use one of {', '.join(map(str, choices))}"

    return check


def split_list(text: str) -> list[str]:
    """`"a, b,,c"` -> `["a", "b", "c"]`."""
    return [part.strip() for part in text.split(",") if part.strip()]
