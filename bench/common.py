"""Helpers for the benchmarks: medians of repeated timings and a ratio line."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
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


def interleaved_medians(
    actions: dict[str, Callable[[], object]], repeats: int, setup: Callable[[], object]
) -> dict[str, float]:
    """Median wall time of each action, run in turn within each repeat (drift hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            setup()
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


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
def emulator_behind_proxy(
    prefix: str,
    delay_s: float = 0.0,
    bytes_per_s: float = 0.0,
    seed: Path | None = None,
    disk: Path | None = None,
) -> Iterator[tuple[Path, Any, str]]:
    """A scratch folder, fake-gcs-server, and the URL of the latency proxy in front of it.

    The proxy (devtools/latency_proxy.py) runs in a process of its own: it stands
    for the network, whose work must not take the measured process's interpreter lock. `seed/<bucket>/<name>`
    files are objects from the start. All is gone after.
    """
    from src.backends.emulator import GcsEmulator

    work = Path(tempfile.mkdtemp(prefix=prefix))
    server = GcsEmulator.start(work / "logs", timeout_s=600, seed=seed, disk=disk)
    command = [sys.executable, "-m", "devtools.latency_proxy", server.url]
    command += ["--delay-s", str(delay_s), "--bytes-per-s", str(bytes_per_s)]
    proxy = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield work, server, proxy.stdout.readline().strip()
    finally:
        proxy.kill()
        proxy.wait()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
