"""Helpers for the benchmarks: medians of repeated timings and a ratio line."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def emulator_behind_proxy(prefix: str, **proxy_options) -> Iterator[tuple[Path, Any, Any]]:
    """A scratch folder, fake-gcs-server, and the loopback proxy in front of it; all gone after."""
    from devtools.http_proxy import HttpProxy
    from src.backends.emulator import GcsEmulator

    work = Path(tempfile.mkdtemp(prefix=prefix))
    server = GcsEmulator.start(work / "logs")
    proxy = HttpProxy(server.url, **proxy_options).start()
    try:
        yield work, server, proxy
    finally:
        proxy.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
