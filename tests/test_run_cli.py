"""`python -m src.pipeline run` driven as a person drives it: a subprocess, signals, two at once."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.backends.local import read_task_outputs
from src.backends.sample import SAMPLE_DIR
from src.cli.options import given_params
from src.common.atomic_files import TEMPORARY_MARK
from src.data.cleanse import CleanseSettings, cleanse_folder
from src.gan.model_folder import load_checkpoint
from src.gan.training.task import train_task
from src.params.schema import local_defaults
from src.params.values import resolve

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--batch-size",
    "2",
    "--num-images",
    "2",
    "--param",
    "latent_dim=32",
    "--param",
    "fmap_max=16",
]
SMALL = [*TINY, "--param", "save_every=1"]

pytestmark = pytest.mark.slow


def start_run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(workdir), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


TAG = "LWGAN_TEST_RUN_TAG"


def run_tagged(workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """A whole run; every process it starts inherits a tag in its environment."""
    tag = secrets.token_hex(8)
    done = subprocess.run(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(workdir), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, TAG: tag},
    )  # fmt: skip
    return done, tag


def tagged(tag: str) -> set[int]:
    """Live processes whose environment carries `tag`, in any process group or session."""
    needle, found = f"{TAG}={tag}".encode(), set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return alive(found)


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


def test_sigterm_saves_the_step_in_flight_sigkill_takes_every_child_down_resume_is_exact(
    tmp_path, uninterrupted_12_steps
):
    # Given a run training 12 steps that checkpoints only every 100, when its runner gets SIGTERM
    # (as a spot node's container does), then the train step saved the step it was in
    workdir = tmp_path / "runs"
    run_dir, stopped = sigterm_after_step_4(workdir)
    log = run_dir / "logs" / "train-gan.log"
    # When the resumed run is training again and its runner is killed with SIGKILL
    runner = start_run(workdir, "--resume", run_dir.name)
    assert wait_until(lambda: logged_step(log) > stopped, 240), "the resume never trained"
    children = descendants(runner.pid)
    assert children, "the runner had no child processes"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    runner.stdout.close()
    # Then none of its children outlives it (the worker takes its process group down)
    assert wait_until(lambda: not alive(children), 5), f"still alive: {alive(children)}"
    killed_at = checkpoint_step(run_dir)
    assert killed_at >= stopped
    # When the run is resumed once more, then finished steps are reused, training goes on from
    # the saved step and ends with the weights of an uninterrupted run
    resumed = resume_run(workdir, run_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "cleanse-images: reused" in resumed.stdout
    assert re.search(rf"train: +steps {killed_at}->12", resumed.stdout), resumed.stdout[-2000:]
    a, b = final_weights(run_dir), uninterrupted_12_steps
    assert all(torch.equal(a[key], b[key]) for key in a)


def resume_run(workdir: Path, run_dir: Path) -> subprocess.CompletedProcess:
    """`run --resume` of `run_dir`, to its end, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(workdir),
         "--resume", run_dir.name],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def sigterm_after_step_4(workdir: Path, *extra: str) -> tuple[Path, int]:
    """A 12-step run (checkpoints every 100) whose runner gets SIGTERM once step 4 is logged;
    checks it stopped with the resume line and the mirror holding the step it was in, and
    returns its folder and that step."""
    runner = start_run(workdir, *extra, "--steps", "12", *TINY, "--param", "save_every=100")
    run_dir = Path(runner.stdout.readline().split(": ", 1)[1].strip())
    log = run_dir / "logs" / "train-gan.log"
    assert wait_until(lambda: logged_step(log) >= 4, 240), "training never reached step 4"
    runner.send_signal(signal.SIGTERM)
    out = runner.stdout.read()
    assert runner.wait(timeout=120) == 130 and "Resume with" in out, out
    stopped = int(re.search(r"stopped by SIGTERM after step (\d+)", log.read_text()).group(1))
    assert 4 <= stopped < 12
    assert checkpoint_step(run_dir) == stopped
    return run_dir, stopped


def logged_step(log: Path) -> int:
    steps = re.findall(r"step (\d+)/\d+ ", log.read_text()) if log.is_file() else []
    return int(steps[-1]) if steps else 0


def uninterrupted_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The weights 12 uninterrupted steps of TINY runs train, on the same images
    (conftest.py's `uninterrupted_12_steps` holds them for the session)."""
    params = resolve(given_params([("steps", "12"), *pairs(TINY)]), local_defaults(sample=True))
    mode = "RGBA" if params["transparent"] else "L" if params["greyscale"] else "RGB"
    settings = CleanseSettings(
        image_size=params["image_size"],
        mode=mode,
        near_duplicate_distance=params["near_duplicate_distance"],
        workers=1,
    )
    cleanse_folder(SAMPLE_DIR, folder / "cleansed", settings)
    train_task(folder / "cleansed", folder / "model", "", params)
    return load_checkpoint(folder / "model")["gan"]


def pairs(args: list[str]) -> list[tuple[str, str]]:
    """The NAME=VALUE pairs of `--param` and `--flag VALUE` command-line arguments."""
    found = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        found.append(
            tuple(value.split("=", 1)) if flag == "--param" else (flag[2:].replace("-", "_"), value)
        )
    return found


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
    assert "Resume with:" in rest and "--resume" in rest
    assert wait_until(lambda: not alive(children), 5), f"still alive: {alive(children)}"


def test_two_runs_in_one_workdir_keep_to_their_own_folders(finished_runs):
    # Given two runs started at the same moment with the same --workdir
    done, _, workdir = finished_runs
    outputs = [run.stdout for run in done]
    # Then both succeed, each in its own folder, and each summary names only its own files
    assert [run.returncode for run in done] == [0, 0], outputs
    folders = [Path(out.splitlines()[0].split(": ", 1)[1]) for out in outputs]
    assert folders[0] != folders[1] and {f.parent for f in folders} == {workdir.resolve()}
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


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory) -> tuple[list[subprocess.CompletedProcess], str, Path]:
    """Two whole runs started at the same moment in one workdir, every process they start tagged."""
    workdir, tag = tmp_path_factory.mktemp("finished"), secrets.token_hex(8)
    env = {**os.environ, TAG: tag}
    runs = [start_run(workdir, "--steps", "1", *SMALL, env=env) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    done = [
        subprocess.CompletedProcess(run.args, run.returncode, out, "")
        for run, out in zip(runs, outputs, strict=True)
    ]
    return done, tag, workdir


@pytest.fixture(scope="module")
def too_few_images_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, str, Path]:
    """The bundled 32 px digits at image_size 1024: the cleanse keeps none of them."""
    workdir = tmp_path_factory.mktemp("too-few")
    done, tag = run_tagged(workdir, "--image-size", "1024", *SMALL)
    return done, tag, workdir


def test_finished_runs_leave_no_process_behind(finished_runs):
    done, tag, _ = finished_runs
    assert [run.returncode for run in done] == [0, 0], done[0].stdout[-3000:]
    assert not tagged(tag), f"still running: {tagged(tag)}"


def test_a_failed_run_leaves_no_process_behind(too_few_images_run):
    done, tag, _ = too_few_images_run
    assert done.returncode == 1, done.stdout[-3000:]
    assert not tagged(tag), f"still running: {tagged(tag)}"


def test_processes_that_escape_into_a_session_of_their_own_are_stopped_too():
    # Given a process that adopts orphans, whose child starts a grandchild in a new session and exits
    script = (
        "import subprocess, sys\n"
        "from src.backends.processes import adopt_orphans, stop_descendants\n"
        "adopt_orphans()\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(300)']\n"
        "subprocess.run([sys.executable, '-c', 'import subprocess, sys; '\n"
        "    f'subprocess.Popen({sleeper!r}, start_new_session=True)'], check=True)\n"
        "stop_descendants()\n"
    )
    tag = secrets.token_hex(8)
    # When it stops its descendants and exits
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, TAG: tag},
    )  # fmt: skip
    # Then the grandchild, in another session and process group, is gone as well
    assert done.returncode == 0, done.stderr
    assert not tagged(tag), f"still running: {tagged(tag)}"


def test_the_summary_shows_what_the_download_skipped(finished_runs):
    done, _, _ = finished_runs
    assert re.search(
        r"download: .*; skipped or renamed not_image_extension 1$", done[0].stdout, re.M
    )


def test_too_few_images_name_the_drop_reasons_and_the_fix_that_helps(too_few_images_run):
    done, _, _ = too_few_images_run
    failure = done.stdout[done.stdout.index("FAILED at step cleanse-images") :]
    assert re.search(r"too_small \d{2}", failure), failure
    assert "image_size=64" in failure and "lower batch_size" not in failure


def test_a_failed_cleanse_still_publishes_its_report(too_few_images_run):
    done, _, workdir = too_few_images_run
    (run_dir,) = workdir.iterdir()
    page = run_dir / "report" / "cleanse.html"
    assert page.as_uri() in done.stdout
    assert "Dropped: too_small" in page.read_text()


def test_resume_removes_the_temporary_files_that_killed_writers_left(finished_runs):
    # Given a finished run, with the temporaries that writers killed mid-save would leave
    done, _, workdir = finished_runs
    run_dir = Path(done[0].stdout.splitlines()[0].split(": ", 1)[1])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cleansed,) = run_dir.glob("pipeline_root/*/cleanse-images/cleansed")
    left = [
        cleansed / f".images.npy{TEMPORARY_MARK}{dead.pid}",
        run_dir / f"checkpoints/.x.pt{TEMPORARY_MARK}{dead.pid}",
    ]
    for path in left:
        path.write_bytes(b"partial")
    # When it is resumed
    done = resume_run(workdir, run_dir)
    # Then they are gone, and the run says so
    assert done.returncode == 0, done.stdout[-3000:]
    assert not any(path.exists() for path in left)
    assert "removed 2 temporary files that killed writers left" in done.stdout


def test_resuming_a_run_that_is_still_running_is_refused_naming_its_process(tmp_path):
    # Given a run that is working
    runner = start_run(tmp_path, "--steps", "200", *SMALL)
    try:
        run_dir = Path(runner.stdout.readline().split(": ", 1)[1].strip())
        for line in runner.stdout:
            if line.startswith("download-images: started"):
                break
        # When a second runner is asked to resume it
        second = subprocess.run(
            [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(tmp_path),
             "--resume", run_dir.name],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        # Then it exits 2 naming the process that holds the run, and the first one goes on
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"is still running (process {runner.pid} holds" in second.stderr
        assert runner.poll() is None
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.stdout.read()
        code = runner.wait(timeout=60)
    assert code == 130


def test_a_full_disk_under_the_runner_ends_in_one_line_with_the_path_and_the_resume_hint(
    small_disk,
):
    # Given a workdir on a disk that holds the run's first files and then is full
    workdir = small_disk(12)
    # When a run starts there
    done, tag = run_tagged(workdir, "--steps", "1", *SMALL)
    # Then it ends like a failed step: the file, the reason, the fix, how to resume; nothing left
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    failure, resume = done.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(
        rf"FAILED in the runner: cannot write {re.escape(str(workdir.resolve()))}/\S+ "
        r"\(No space left on device\): free space on that disk; then resume:",
        failure,
    ), failure
    assert re.fullmatch(r"  python -m src.pipeline run --workdir \S+ --resume \S+", resume)
    assert not tagged(tag), f"still running: {tagged(tag)}"


def test_a_killed_worker_takes_every_process_of_the_run_with_it(tmp_path):
    # Given a run that is training, every process of it tagged in its environment
    tag = secrets.token_hex(8)
    runner = start_run(tmp_path, "--steps", "300", *TINY, env={**os.environ, TAG: tag})
    run_dir = Path(runner.stdout.readline().split(": ", 1)[1].strip())
    assert wait_until(lambda: logged_step(run_dir / "logs" / "train-gan.log") >= 1, 240)
    (worker,) = [pid for pid in descendants(runner.pid) if b"local_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip
    # When the worker, which watches the steps and the emulator, is killed outright
    os.kill(worker, signal.SIGKILL)
    out = runner.stdout.read()
    runner.wait(timeout=60)
    # Then within seconds nothing of the run is left (its orphans belonged to init, not the runner)
    assert wait_until(lambda: not tagged(tag), 10), f"still running: {tagged(tag)}"
    # and the run can be resumed at once: its folder is no longer locked
    assert "--resume" in out, out[-2000:]


def test_ctrl_c_during_training_ends_with_the_saved_step_not_a_failure(tmp_path):
    # Given a run that is training
    runner = start_run(tmp_path, "--steps", "300", *TINY)
    run_dir = Path(runner.stdout.readline().split(": ", 1)[1].strip())
    assert wait_until(lambda: logged_step(run_dir / "logs" / "train-gan.log") >= 2, 240)
    # When the person presses Ctrl-C
    runner.send_signal(signal.SIGINT)
    rest = runner.stdout.read()
    assert runner.wait(timeout=120) == 130
    # Then the console says the step was stopped, which step is saved where, and how to resume
    saved = int(re.search(r"stopped by SIGTERM after step (\d+)", (run_dir / "logs" / "train-gan.log").read_text()).group(1))  # fmt: skip
    assert "train-gan: stopped in" in rest and "FAILURE" not in rest, rest
    assert "SIGTERM received" not in rest, rest
    assert (
        f"Stopped after training step {saved}, saved in {run_dir / 'checkpoints'}. Resume with:"
        in rest
    )
    assert checkpoint_step(run_dir) == saved
