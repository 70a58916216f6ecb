"""Every step in the project image, on a real Docker engine (scripts/test.sh starts one).

The image is the one `python -m devtools.project_image build` makes here (on the stand-in
base: these machines reach no image registry), through kfp.local's own DockerRunner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from src.backends import containers
from src.backends.emulator import GcsEmulator
from src.backends.sample import SAMPLE_SOURCE, upload_sample
from src.cli.main import main
from src.gan.model_folder import load_checkpoint
from src.pipeline import COMPILED_FILES
from tests.test_run_cli import (
    ROOT,
    TINY,
    descendants,
    final_weights,
    logged_step,
    resume_run,
    sigterm_after_step_4,
    start_run,
    wait_until,
)

pytestmark = pytest.mark.container
STEPS = ("download-images", "cleanse-images", "train-gan", "generate-images")


def leftovers(run_dir: Path) -> list[str]:
    """Containers and networks of the run that still exist."""
    client = containers.docker_client()
    found = [c.id for c in containers.run_containers(run_dir, client)]
    label = f"{containers.LABEL}={run_dir}"
    return found + [n.name for n in client.networks.list(filters={"label": label})]


def run_dir_of(runner: subprocess.Popen) -> Path:
    return Path(runner.stdout.readline().split(": ", 1)[1].strip())


def test_every_step_runs_in_the_image_and_nothing_of_the_run_is_left(project_image, tmp_path):
    # When the default pipeline runs with --image, as a user types it
    done = subprocess.run(
        [sys.executable, "-m", "src.pipeline", "run", "--workdir", str(tmp_path),
         "--image", project_image, "--steps", "3", *TINY],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Then it succeeds with the usual console and summary
    assert done.returncode == 0, done.stdout[-3000:]
    run_dir = Path(done.stdout.splitlines()[0].split(": ", 1)[1])
    assert "Pipeline succeeded" in done.stdout and "train:     steps 0->3" in done.stdout
    # and every step ran in a container of the image, installing nothing
    for step in STEPS:
        log = (run_dir / "logs" / f"{step}.log").read_text()
        assert f"Found image '{project_image}'" in log, step
        assert "pip install" not in log and "Successfully installed" not in log, step
    # and no container or network of the run is left
    assert leftovers(run_dir) == []


def test_sigterm_saves_in_the_container_and_resume_ends_as_an_uninterrupted_run(
    project_image, tmp_path, uninterrupted_12_steps
):
    # Given a run in the image training 12 steps that checkpoints only every 100, when its runner
    # gets SIGTERM, then the step in the container saved the step it was in (checked there)
    workdir = tmp_path / "runs"
    run_dir, stopped = sigterm_after_step_4(workdir, "--image", project_image)
    log = run_dir / "logs" / "train-gan.log"
    # and no container of the run is left
    assert leftovers(run_dir) == []
    # When it is resumed, then it goes on in the same image and ends with an uninterrupted run's weights
    resumed = resume_run(workdir, run_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert re.search(rf"train: +steps {stopped}->12", resumed.stdout), resumed.stdout[-2000:]
    assert log.read_text().count(f"Found image '{project_image}'") == 2  # both attempts in it
    a, b = final_weights(run_dir), uninterrupted_12_steps
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_killed_worker_leaves_no_container_running(project_image, tmp_path):
    # Given a run in the image that is training
    runner = start_run(tmp_path, "--image", project_image, "--steps", "200", *TINY)
    run_dir = run_dir_of(runner)
    assert wait_until(lambda: logged_step(run_dir / "logs" / "train-gan.log") >= 1, 240)
    assert containers.run_containers(run_dir), "the train step runs in no container"
    # When the worker that watches the containers is killed (they are not its children)
    (worker,) = {pid for pid in descendants(runner.pid) if _is_worker(pid)}
    os.kill(worker, signal.SIGKILL)
    # Then the runner ends and takes the run's containers and network with it
    runner.stdout.read()
    assert runner.wait(timeout=60) != 0
    assert wait_until(lambda: not leftovers(run_dir), 20), leftovers(run_dir)


def _is_worker(pid: int) -> bool:
    try:
        return b"src.backends.local_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


PROBE = """
import importlib.util, socket, subprocess, sys
from google.cloud import storage
import src
print("src", src.__file__)
print("objects", sum(1 for _ in storage.Client().list_blobs("{bucket}")))
try:
    socket.create_connection(("pypi.org", 443), timeout=5)
    print("index reachable")
except OSError as error:
    print("index unreachable", type(error).__name__)
pip = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "0",
                      "--timeout", "3", "-d", "/tmp/x", "six"], capture_output=True, timeout=120)
print("pip download", pip.returncode)
"""


def test_a_step_container_reaches_the_emulator_and_no_package_index(project_image, tmp_path):
    # Given the run's network and the emulator on its gateway, as the worker sets them up
    client = containers.docker_client()
    with containers.run_network(client, tmp_path) as network:
        emulator = GcsEmulator.start(tmp_path / "logs", host=network.gateway)
        try:
            upload_sample(emulator.client())
            bucket = SAMPLE_SOURCE.split("/")[2]
            args = containers.container_args(tmp_path, network, {"STORAGE_EMULATOR_HOST": emulator.url}, [])  # fmt: skip
            # When a container of the image runs there with the steps' settings
            out = client.containers.run(
                project_image, ["python3", "-c", PROBE.format(bucket=bucket)], remove=True, **args
            ).decode()
        finally:
            emulator.stop()
    # Then its code is the image's, it reads the emulator, and no package index can be reached
    assert "src /app/src/__init__.py" in out
    assert re.search(r"objects [1-9]\d*", out), out
    assert "index unreachable" in out and "pip download 1" in out, out
    assert leftovers(tmp_path) == []


DRIVER = """
import importlib.util, json, sys
assert importlib.util.find_spec("src") is None, "src is importable here"
from kfp import components, local
file, args, root, params = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
local.init(runner=local.DockerRunner(**args), pipeline_root=root, raise_on_error=True)
components.load_component_from_file(file)(**params)
print("pipeline done")
"""


@pytest.mark.parametrize("target", sorted(COMPILED_FILES))
def test_the_compiled_image_file_runs_end_to_end_in_the_image(project_image, target, tmp_path):
    # Given the file compiled for the image, and an empty folder where src is not importable
    assert main(["compile", "--out-dir", str(tmp_path / "yaml"), "--image", project_image]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "driver.py").write_text(textwrap.dedent(DRIVER))
    client = containers.docker_client()
    params = {"source_uri": SAMPLE_SOURCE, "steps": 2, "image_size": 32, "batch_size": 2,
              "num_images": 2, "latent_dim": 32, "fmap_max": 16, "greyscale": True}  # fmt: skip
    with containers.run_network(client, tmp_path) as network:
        emulator = GcsEmulator.start(tmp_path / "logs", host=network.gateway)
        try:
            upload_sample(emulator.client())
            env = {"STORAGE_EMULATOR_HOST": emulator.url}
            args = containers.container_args(tmp_path, network, env, [])
            # When kfp.local runs it, file as uploaded, every step in a container of the image
            done = subprocess.run(
                [sys.executable, "driver.py", str(tmp_path / "yaml" / COMPILED_FILES[target]),
                 json.dumps(args), str(tmp_path / "root"), json.dumps(params)],
                cwd=empty, capture_output=True, text=True, timeout=600,
                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            )  # fmt: skip
        finally:
            emulator.stop()
    # Then the four steps succeeded and the generator's images are there
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "pipeline done" in done.stdout
    assert len(list(tmp_path.glob("root/*/generate-images/samples/image_*.png"))) == 2
    assert leftovers(tmp_path) == []


def test_a_run_with_an_image_the_engine_lacks_is_refused_before_anything_starts(tmp_path, capsys):
    containers.docker_client()  # an engine answers (scripts/test.sh starts one)
    code = main(["run", "--workdir", str(tmp_path), "--image", f"lwgan-absent:{time.time_ns()}"])
    assert code == 2
    assert "no such image on this engine: build it with" in capsys.readouterr().err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_the_startup_benchmark_prints_what_the_image_saves_a_step(project_image, capsys):
    from bench import step_startup

    assert step_startup.main(["--repeats", "1", "--steps", "download-images"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"download-images +embedded +[\d.]+s +image +[\d.]+s +saves +-?[\d.]+s", out)
    assert re.search(r"the project adds \d+ MB", out), out


POD_TRAIN = (
    "import sys; from pathlib import Path; from src.gan.config import TrainConfig;"
    "from src.common.step_logging import configure_logging; from src.gan.training.loop import train_gan;"
    "configure_logging(); config = TrainConfig(image_size=32, batch_size=2, steps=1000, latent_dim=32,"
    " fmap_max=16, save_every=1000, log_every=1, checkpoint_minutes=float(sys.argv[1]));"
    "train_gan(Path('/work/data'), Path('/work/model'), config, checkpoint_root='/work/mirror')"
)


def preempted_in_a_kfp_pod(
    image: str, data: Path, work: Path, minutes: float
) -> tuple[int, int, str]:
    """Trains in the image under the KFP pod's process tree, SIGTERMs its PID 1 after step 8;
    returns the last step it logged, the step of the checkpoint that survived, and the log."""
    from docker.types import Mount

    shutil.copytree(data, work / "data")
    shutil.copy(ROOT / "tests" / "support" / "kfp_pod.py", work / "kfp_pod.py")
    client = containers.docker_client()
    pod = client.containers.run(
        image, ["python3", "/work/kfp_pod.py", "emissary", "python3", "-c", POD_TRAIN, str(minutes)],
        detach=True, network_mode="none", labels={containers.LABEL: str(work)},
        mounts=[Mount("/work", str(work), type="bind")], environment={"HOME": "/tmp"},
    )  # fmt: skip
    try:
        assert wait_until(lambda: "step 8/1000" in pod.logs().decode(), 240), pod.logs().decode()
        pod.kill(signal="SIGTERM")  # what the kubelet does to the pod's containers
        pod.wait(timeout=60)
        log = pod.logs().decode()
    finally:
        pod.remove(force=True)
    logged = max(int(step) for step in re.findall(r"step (\d+)/1000 ", log))
    saved = load_checkpoint(work / "mirror")
    return logged, (saved or {"step": 0})["step"], log


def test_on_kfp_a_sigterm_saves_nothing_but_time_based_checkpoints_bound_the_loss(
    project_image, cleansed_sample, tmp_path
):
    # Given training in a KFP pod's process tree, checkpoints every 1,000 steps only
    (tmp_path / "a").mkdir()
    logged, saved, log = preempted_in_a_kfp_pod(project_image, cleansed_sample, tmp_path / "a", 0)
    # When the pod is stopped, then the step dies with its launcher before it can save (whether
    # its handler even ran first is a race it mostly loses: a torch op holds the interpreter)
    assert "stopped by SIGTERM" not in log and saved == 0 and logged >= 8
    # Given the same with checkpoint_minutes set (here 1.2 s), when stopped alike
    (tmp_path / "b").mkdir()
    logged, saved, log = preempted_in_a_kfp_pod(
        project_image, cleansed_sample, tmp_path / "b", 0.02
    )
    # Then what survives is a time-based checkpoint: a step save_every never reaches
    assert "stopped by SIGTERM" not in log
    assert 0 < saved <= logged and saved % 1000
