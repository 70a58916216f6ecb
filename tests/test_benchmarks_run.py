"""The benchmarks still run (tiny sizes; no timing thresholds: these machines are noisy)."""

from __future__ import annotations

import json
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


# Whole benchmark runs: the full suite's, not the edit loop's.
pytestmark = pytest.mark.slow


def test_cleanse_benchmark_prints_a_ratio():
    output = run_bench("bench.cleanse_throughput", "--images", "20", "--repeats", "1")
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_download_benchmark_prints_a_ratio():
    output = run_bench(
        "bench.download_parallel",
        "--objects",
        "12",
        "--repeats",
        "1",
        "--parallel-repeats",
        "1",
        "--rtt-ms",
        "4",
    )
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_generation_benchmark_prints_a_ratio():
    output = run_bench("bench.generate_speed", "--images", "4", "--steps", "1")
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_swd_benchmark_prints_a_ratio_of_identical_scores():
    output = run_bench("bench.swd_speed", "--images", "4", "--size", "32", "--repeats", "1")
    assert re.search(r"speed-up: \d+\.\d+x \(scores identical\)", output)


def test_train_step_benchmark_prints_a_ratio_against_upstream():
    output = run_bench(
        "bench.train_step", "--rounds", "1", "--steps", "2", "--batch-size", "2",
        "--latent-dim", "32", "--fmap-max", "16",
    )  # fmt: skip
    assert re.search(r"ratio ours/upstream: +\d+\.\d+x", output)


def test_preemption_benchmark_loses_fewer_steps_to_sigterm_than_to_a_kill():
    output = run_bench("bench.preemption", "--steps", "20", "--stop-after", "2", "--repeats", "1")
    term = re.search(r"SIGTERM: saved step (\d+), 0 steps lost", output)
    kill = re.search(r"SIGKILL: saved step 0, (\d+) steps lost", output)
    assert term and kill and int(term.group(1)) >= 2 and int(kill.group(1)) >= 2, output


def test_archive_benchmark_prints_a_ratio():
    output = run_bench(
        "bench.archive_download",
        "--mib",
        "72",
        "--cap-mb-s",
        "200",
        "--rtt-ms",
        "2",
        "--repeats",
        "1",
    )
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_boundary_benchmark_prints_a_ratio():
    output = run_bench(
        "bench.artifact_boundary", "--images", "30", "--repeats", "1", "--rtt-ms", "1"
    )
    assert re.search(r"30 images: 31 files vs 2", output)
    assert re.search(r"speed-up: \d+\.\d+x", output)


def test_growth_benchmark_prints_both_ratios():
    output = run_bench(
        "bench.growth", "--small", "40", "--large", "80", "--repeats", "1", "--rtt-ms", "2"
    )
    assert re.search(r"download: .* ratio \d+\.\d+; peak memory", output)
    assert re.search(r"cleanse: .* ratio \d+\.\d+; peak memory", output)


def test_learning_benchmark_prints_swd_beside_floor_and_noise(tmp_path):
    output = run_bench(
        "bench.learning_curve",
        "--steps",
        "2",
        "--every",
        "1",
        "--images",
        "8",
        "--results",
        str(tmp_path),
    )
    assert re.search(r"^\s+2\s+\d\.\d{3}\s+\d\.\d{3}\s+\d\.\d{3}", output, re.M)
    assert (tmp_path / "learning_strip.png").is_file()


def test_gpu_check_runs_every_path_in_its_cpu_smoke_mode(tmp_path):
    # The same code paths as on a GPU: fp32 and fp16, upstream beside ours, kill and resume,
    # generation, two data-parallel processes (gloo here, NCCL there)
    output = run_bench(
        "bench.gpu_check", "--device", "cpu", "--quick", "--json", str(tmp_path / "c.json")
    )
    report = json.loads((tmp_path / "c.json").read_text())
    assert [row["amp"] for row in report["speed"]] == ["off", "fp16"]
    assert all(
        row["ours"]["steps_per_second"] > 0 and row["ours"]["finite"] for row in report["speed"]
    )
    assert report["speed"][0]["upstream"]["steps_per_second"] > 0
    assert report["resume"]["continued_at_saved_step"] and report["resume"]["killed_at_step"] >= 2
    assert report["generate"]["images"] == 8
    assert (report["ranks"]["backend"], report["ranks"]["world_size"]) == ("gloo", 2)
    assert re.search(r"^\s+32\s+off\s+\d+\.\d+\s+-\s+\d+\.\d+\s+-\s+\d+\.\d+x$", output, re.M)
    assert "resume: killed after step" in output and ": ok" in output
