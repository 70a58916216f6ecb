"""Checks of the cleanse step's own settings (the GAN's: rules.py).

Each returns None when the value is fine, else the problem and its fix.
"""

from __future__ import annotations

# dHash has 64 bits; two unrelated images differ in about 32, so a larger limit matches anything.
MAX_NEAR_DUPLICATE_DISTANCE = 32


def near_duplicate_problem(value: int) -> str | None:
    if value == -1 or 0 <= value <= MAX_NEAR_DUPLICATE_DISTANCE:
        return None
    return (
        f"near_duplicate_distance={value}: use -1 (off) or a dHash bit distance from 0 to "
        f"{MAX_NEAR_DUPLICATE_DISTANCE} (4-8 catches resized copies; larger values match "
        "unrelated images)"
    )
