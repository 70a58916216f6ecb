"""Steps in the project image for `run --image`: kfp.local's DockerRunner on a closed network.

Every step of a run runs in a container of the image on a Docker network of the
run's own that is `--internal`: the containers reach the host's emulator on the
network's gateway address and nothing else, so no step can install a package
from an index at run time. Each container carries the run's label, which is how
the worker passes a stop on to them (they are not its child processes) and how
anything of a run is found and removed, whoever dies first. The containers
mount only the pipeline root (kfp.local's own mount) and the run's checkpoint
folder: the code comes from the image. They run as the caller's user, with
docker's init as their first process so that Ctrl-C ends a step that has no
SIGTERM handler of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from src.common.errors import ConfigError

LABEL = "lwgan-kfp.run"  # value: the run folder's path
SHM_SIZE = "2g"  # Docker's default /dev/shm (64 MB) is too small for data-loading ranks


def docker_client():
    """A client of the engine that DOCKER_HOST names (or the local one); a clear error if none."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as error:  # the SDK raises several types for "no engine"
        raise ConfigError(
            f"--image needs a running Docker engine, and none answered ({error}): start one "
            "(Debian: apt-get install docker.io, then dockerd), or set DOCKER_HOST"
        ) from error
    return client


def require_image(client, image: str) -> None:
    """Refuses a run whose image is not here: kfp.local would try to pull it."""
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ConfigError(
            f"--image {image}: no such image on this engine: build it with "
            "`python -m devtools.project_image build` (or docker build), or pull it first"
        ) from None


@dataclass(frozen=True)
class RunNetwork:
    """The run's internal network: its name and the host's address on it."""

    name: str
    gateway: str


@contextlib.contextmanager
def run_network(client, run_root: Path) -> Iterator[RunNetwork]:
    """An internal network for one run's containers, removed with them on the way out."""
    name = f"lwgan-{run_root.name}-{os.getpid()}"
    network = client.networks.create(name, internal=True, labels={LABEL: str(run_root)})
    try:
        network.reload()
        yield RunNetwork(name, network.attrs["IPAM"]["Config"][0]["Gateway"])
    finally:
        remove_run_containers(run_root, client)  # the network too


def container_args(
    run_root: Path,
    network: RunNetwork,
    environment: dict[str, str],
    mounts: Iterable[Path],
    read_only: Iterable[Path] = (),
) -> dict:
    """What DockerRunner passes to `containers.run` for every step of the run."""
    from docker.types import Mount

    binds = [Mount(str(path), str(path), type="bind") for path in mounts]
    binds += [Mount(str(path), str(path), type="bind", read_only=True) for path in read_only]
    return {
        "labels": {LABEL: str(run_root)},
        "network": network.name,
        "environment": {"HOME": "/tmp", **environment},
        "user": f"{os.getuid()}:{os.getgid()}",
        "init": True,
        "shm_size": SHM_SIZE,
        "mounts": binds,
    }


def run_containers(run_root: Path, client=None) -> list:
    """The containers of the run in `run_root` that still exist (running or not)."""
    client = client or docker_client()
    # sparse: no inspection of each, which fails for one that auto_remove deletes meanwhile
    return client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={run_root}"})


def signal_run_containers(run_root: Path, signum: int, client=None) -> int:
    """Sends `signum` to every running container of the run; returns how many."""
    sent = 0
    for container in run_containers(run_root, client):
        with contextlib.suppress(Exception):  # it may end between the listing and the signal
            container.kill(signal=signum)
            sent += 1
    return sent


def remove_run_containers(run_root: Path, client=None) -> int:
    """Kills and removes every container of the run, and its network; returns how many."""
    client = client or docker_client()
    containers = run_containers(run_root, client)
    for container in containers:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    for network in client.networks.list(filters={"label": f"{LABEL}={run_root}"}):
        with contextlib.suppress(Exception):
            network.remove()
    return len(containers)
