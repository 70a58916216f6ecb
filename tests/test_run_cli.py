"""`python -m src.pipeline run` driven as a person drives it: a subprocess, signals, two at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.backends.local import read_task_outputs

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--batch-size", "2", "--num-images", "2", "--param", "latent_dim=32"]
SMALL += ["--param", "fmap_max=16", "--param", "save_every=1"]

pytestmark = pytest.mark.slow


def start_run(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(workdir), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = set(), [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.add(pid)
    return live


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def checkpoint_step(run_dir: Path) -> int:
    path = run_dir / "checkpoints" / "checkpoint.pt"
    try:
        return (
            torch.load(path, weights_only=True, map_location="cpu")["step"] if path.exists() else 0
        )
    except Exception:  # being replaced right now
        return 0


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    model = Path(read_task_outputs(run_dir / "pipeline_root")["train-gan"]["uri"])
    return torch.load(model / "checkpoint.pt", weights_only=True, map_location="cpu")["gan"]


def test_sigkill_takes_every_child_down_and_resume_continues_from_the_checkpoint(tmp_path):
    # Given a run that is training
    runner = start_run(tmp_path / "runs", "--steps", "12", *SMALL)
    run_dir = Path(runner.stdout.readline().split(": ", 1)[1].strip())
    assert wait_until(lambda: checkpoint_step(run_dir) >= 3, 240), "training never checkpointed"
    children = descendants(runner.pid)
    assert children, "the runner had no child processes"
    # When the runner is killed with SIGKILL
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    runner.stdout.close()
    # Then none of its children outlives it (the worker takes its process group down)
    assert wait_until(lambda: not alive(children), 5), f"still alive: {alive(children)}"
    killed_at = checkpoint_step(run_dir)
    # When the run is resumed
    resumed = subprocess.run(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(tmp_path / "runs"),
         "--resume", run_dir.name],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Then finished steps were reused and training went on from the checkpoint
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "cleanse-images: reused" in resumed.stdout
    match = re.search(r"train: +steps (\d+)->12", resumed.stdout)
    assert match and int(match.group(1)) == killed_at > 0
    # And the weights equal those of an uninterrupted run of the same length
    straight = subprocess.run(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(tmp_path / "straight"),
         "--steps", "12", *SMALL],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert straight.returncode == 0, straight.stdout[-3000:]
    (straight_dir,) = (tmp_path / "straight").iterdir()
    a, b = final_weights(run_dir), final_weights(straight_dir)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_ctrl_c_stops_promptly_with_a_resume_line_and_no_children_left(tmp_path):
    runner = start_run(tmp_path, "--steps", "200", *SMALL)
    seen = []
    for line in runner.stdout:
        seen.append(line)
        if line.startswith("train-gan: started"):
            break
    children = descendants(runner.pid)
    runner.send_signal(signal.SIGINT)
    rest = runner.stdout.read()
    code = runner.wait(timeout=60)
    assert code == 130
    assert "Interrupted. Resume with:" in rest and "--resume" in rest
    assert wait_until(lambda: not alive(children), 5), f"still alive: {alive(children)}"


def test_two_runs_in_one_workdir_keep_to_their_own_folders(tmp_path):
    # Given two runs started at the same moment with the same --workdir
    runs = [start_run(tmp_path, "--steps", "1", *SMALL) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    # Then both succeed, each in its own folder, and each summary names only its own files
    assert [run.returncode for run in runs] == [0, 0], outputs
    folders = [Path(out.splitlines()[0].split(": ", 1)[1]) for out in outputs]
    assert folders[0] != folders[1] and {f.parent for f in folders} == {tmp_path.resolve()}
    for own, other, out in zip(folders, reversed(folders), outputs, strict=True):
        summary = out[out.index("Pipeline succeeded") :]
        assert str(own) in summary and str(other) not in summary


@pytest.mark.skipif(not hasattr(os, "getpgid"), reason="POSIX process groups")
def test_sigterm_stops_the_runner_like_ctrl_c(tmp_path):
    runner = start_run(tmp_path, "--steps", "200", *SMALL)
    for line in runner.stdout:
        if line.startswith("download-images: started"):
            break
    children = descendants(runner.pid)
    runner.send_signal(signal.SIGTERM)
    rest = runner.stdout.read()
    assert runner.wait(timeout=60) == 130 and "Resume with" in rest
    assert wait_until(lambda: not alive(children), 5)
