"""The process that runs the pipeline for `python -m src.pipeline run`, and dies with its parent.

Started in a session of its own by the runner, it adopts every orphan among its
descendants (processes.py), asks the kernel for SIGTERM when the runner dies
(even by SIGKILL), and on every way out (success, failure, SIGTERM) stops every
process it started: the emulator, kfp.local's step subprocesses, training ranks,
and whatever they started in sessions of their own. SIGTERM is first passed on
to them with the grace a spot VM gives (STOP_GRACE_S), so the train step saves
the step it is in; whatever is left then is killed. It inherits the run's lock
from the runner and holds it until it exits.

    python -m src.backends.local_worker RUN_FOLDER RUNNER_PID
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from kfp import local

from src.backends import containers
from src.backends.emulator import GcsEmulator
from src.backends.processes import (
    STOP_GRACE_S,
    adopt_orphans,
    signal_descendants,
    signal_when_parent_dies,
    stop_descendants,
)
from src.backends.run_folder import RunFolder, RunnerWriteError
from src.backends.sample import upload_sample
from src.common.atomic_files import write_json_atomically
from src.pipeline import build_pipeline

# The run folder while its steps run in containers: they are not this process's descendants.
_containers_of: Path | None = None


def _stop_everything_and_exit(*_: object) -> None:
    stop_descendants()
    if _containers_of is not None:
        containers.remove_run_containers(_containers_of)
    os._exit(128 + signal.SIGTERM)


def _pass_on_stop(*_: object) -> None:
    """Passes SIGTERM on to every process below, and ends them all if they outlast the grace.

    The pipeline then ends as it does when a step fails: the train step saves and
    mirrors the step it finished first.
    """
    signal.signal(signal.SIGTERM, _stop_everything_and_exit)  # a second SIGTERM: at once
    signal_descendants(signal.SIGTERM)
    if _containers_of is not None:
        containers.signal_run_containers(_containers_of, signal.SIGTERM)
    timer = threading.Timer(STOP_GRACE_S, _stop_everything_and_exit)
    timer.daemon = True
    timer.start()


def die_with(parent_pid: int) -> None:
    """SIGTERM when the parent dies; SIGTERM stops every process below this one, then this one."""
    adopt_orphans()
    signal.signal(signal.SIGTERM, _pass_on_stop)
    signal_when_parent_dies(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _stop_everything_and_exit()


def run(folder: RunFolder) -> dict:
    """Runs the pipeline once in `folder`; returns what result.json records."""
    spec = folder.spec()
    image = spec.get("image")
    with contextlib.ExitStack() as stack:
        network = stack.enter_context(_network(folder)) if image else None
        if spec["sample"]:
            host = network.gateway if network else "127.0.0.1"
            emulator = GcsEmulator.start(folder.logs, host=host)  # stopped on the way out
            os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
            upload_sample(emulator.client())
        local.init(
            runner=_docker_runner(folder, spec, network) if image else _SUBPROCESS,
            pipeline_root=str(folder.pipeline_root),
            enable_caching=True,  # the cache lives in this run's folder: only --resume reuses it
            raise_on_error=True,
        )
        try:
            build_pipeline("local", image=image)(**spec["params"])
        except RuntimeError as error:
            return {"succeeded": False, "error": str(error)}
    return {"succeeded": True}


_SUBPROCESS = local.SubprocessRunner(use_venv=False)


@contextlib.contextmanager
def _network(folder: RunFolder) -> Iterator[containers.RunNetwork]:
    """The run's closed container network, after removing what a killed attempt left."""
    global _containers_of
    client = containers.docker_client()
    containers.remove_run_containers(folder.root, client)
    with containers.run_network(client, folder.root) as network:
        _containers_of = folder.root
        try:
            yield network
        finally:
            _containers_of = None


def _docker_runner(
    folder: RunFolder, spec: dict, network: containers.RunNetwork
) -> local.DockerRunner:
    """Steps in the image: the emulator's address, the checkpoint folder and resume_from's."""
    params = spec["params"]
    environment = {"STORAGE_EMULATOR_HOST": os.environ.get("STORAGE_EMULATOR_HOST", "")}
    mounts = [Path(params["checkpoint_root"])] if params["checkpoint_root"].startswith("/") else []
    start = params["resume_from"]
    read_only = [Path(start).parent] if start.startswith("/") else []
    args = containers.container_args(folder.root, network, environment, mounts, read_only)
    return local.DockerRunner(**args)


def main(argv: list[str]) -> int:
    folder, parent_pid = RunFolder(Path(argv[0])), int(argv[1])
    die_with(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # cache hits
    try:
        result = run(folder)
    finally:
        stop_descendants()
    try:
        write_json_atomically(folder.result_path, result)
    except OSError as error:
        print(f"RunnerWriteError: {RunnerWriteError(folder.result_path, error)}", flush=True)
        return 1
    return 0 if result["succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
