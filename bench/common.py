"""Helpers for the benchmarks: medians of repeated timings and a ratio line."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def median_seconds(
    action: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None
) -> tuple[float, list[float]]:
    """Median wall time of `action` over `repeats` runs (setup is not timed)."""
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def report(
    name: str,
    baseline_label: str,
    baseline: float,
    candidate_label: str,
    candidate: float,
    unit_count: int,
    unit: str,
) -> float:
    """Prints both medians, their rates and the speed-up; returns the speed-up."""
    ratio = baseline / candidate
    print(f"{name}")
    print(
        f"  baseline  {baseline_label}: median {baseline:.3f}s ({unit_count / baseline:.1f} {unit}/s)"
    )
    print(
        f"  candidate {candidate_label}: median {candidate:.3f}s ({unit_count / candidate:.1f} {unit}/s)"
    )
    print(f"  speed-up: {ratio:.2f}x")
    return ratio
