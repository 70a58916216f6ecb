"""The benchmarks still run (tiny sizes; no timing thresholds: these machines are noisy)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def run_bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_cleanse_benchmark_prints_a_ratio():
    output = run_bench("bench.cleanse_throughput", "--images", "20", "--repeats", "1")
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_download_benchmark_prints_a_ratio():
    output = run_bench(
        "bench.download_parallel", "--objects", "12", "--repeats", "1", "--rtt-ms", "4"
    )
    assert re.search(r"speed-up: \d+\.\d+x", output)


@pytest.mark.slow
def test_generation_benchmark_prints_a_ratio():
    output = run_bench("bench.generate_speed", "--images", "4", "--steps", "1")
    assert re.search(r"speed-up: \d+\.\d+x", output)
