"""Build the project image here: a stand-in base where the PyTorch image cannot be pulled.

The Dockerfile's default base is the pinned PyTorch CUDA image. Machines that reach
no image registry (these, and some private networks) cannot pull it, so
`python -m devtools.project_image build` makes a stand-in from Debian's packages
with mmdebstrap: Debian 12's Python 3.11 in a venv at /opt/venv, holding the torch
and torchvision pair that pip installs here (the tests' own pair), and this
machine's CA bundle. Its name says what it is (`STANDIN_REPOSITORY`); everything
after `FROM` is the same Dockerfile. Both images are tagged by a digest of what
makes them, so an unchanged tree reuses them and a changed one builds anew.

    python -m devtools.project_image build          # prints the image tag
    python -m devtools.project_image build --base pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDIN_REPOSITORY = "lwgan-standin-base-not-pytorch"
IMAGE_REPOSITORY = "lwgan-kfp"
TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # the pair that loads together (NOTES)
SUITE = "bookworm"
VENV = "/opt/venv"
# Local package folders that pip's configuration on these machines names; bound into the
# bootstrap so the torch pair comes from disk. Missing ones are skipped (a laptop has none).
LOCAL_INDEXES = ("/opt/pypi", "/opt/pypi-more", "/opt/wheels")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the image build reads (the .dockerignore keeps the rest out): the image tag's digest.
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "src")


class ImageBuildError(RuntimeError):
    """The engine or the build failed; the message says which step and how to fix it."""


def docker(*args: str, capture: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the docker client; raises ImageBuildError naming the command when it fails."""
    if shutil.which("docker") is None:
        raise ImageBuildError(
            "no docker client: install Docker (Debian: apt-get install docker.io)"
        )
    result = subprocess.run(["docker", *args], capture_output=capture, text=True)
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip()[-2000:] if capture else ""
        raise ImageBuildError(f"docker {shlex.join(args)} failed ({result.returncode}): {detail}")
    return result


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def digest_of(paths: list[Path], extra: str = "") -> str:
    """A short SHA-256 of the files' names and contents (and `extra`), in name order."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def standin_tag() -> str:
    recipe = json.dumps([_bootstrap_command(), _import_changes()])
    return f"{STANDIN_REPOSITORY}:{SUITE}-torch{TORCH[0].split('==')[1]}-{digest_of([], recipe)}"


def image_tag(base: str) -> str:
    version = _project_version()
    files = [p for name in BUILD_INPUTS for p in (ROOT / name, *(ROOT / name).rglob("*"))]
    return f"{IMAGE_REPOSITORY}:{version}-{digest_of(files, base)}"


def _project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _bootstrap_hooks() -> list[str]:
    """mmdebstrap hooks: the host's CA bundle, a venv, the torch pair from the local indexes."""
    mounted = [folder for folder in LOCAL_INDEXES if Path(folder).is_dir()]
    pip = [
        f"{VENV}/bin/pip", "install", "--no-cache-dir", "--disable-pip-version-check",
        f"--cert={HOST_CA_BUNDLE}", *TORCH,
    ]  # fmt: skip
    for folder in mounted:
        pip += [f"--find-links={folder}"] if folder.endswith("wheels") else []
        pip += [] if folder.endswith("wheels") else [f"--extra-index-url=file://{folder}/simple"]
    hooks = [f'mkdir -p "$1{folder}" && mount --bind {folder} "$1{folder}"' for folder in mounted]
    hooks += [
        f'cp {HOST_CA_BUNDLE} "$1{HOST_CA_BUNDLE}"',
        f'chroot "$1" python3 -m venv {VENV}',
        f'chroot "$1" {shlex.join(pip)}',
        f'find "$1{VENV}" -name __pycache__ -prune -exec rm -rf {{}} +',
    ]
    hooks += [f'umount "$1{folder}" && rmdir "$1{folder}"' for folder in mounted]
    return [f"--customize-hook={hook}" for hook in hooks]


def _bootstrap_command() -> list[str]:
    return [
        "mmdebstrap", "--variant=minbase", "--mode=root", "--quiet",
        "--include=python3,python3-venv,ca-certificates",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        *_bootstrap_hooks(), SUITE, "-",
    ]  # fmt: skip


def _import_changes() -> list[str]:
    return [
        f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f'LABEL org.opencontainers.image.description="stand-in for the PyTorch base, built from '
        f'Debian {SUITE} with {" ".join(TORCH)}: not the PyTorch image"',
    ]


def build_standin(tag: str) -> None:
    """Bootstraps Debian into a tar stream and imports it as `tag` (minutes: torch is large)."""
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("no mmdebstrap: install it (Debian: apt-get install -y mmdebstrap)")
    if not HOST_CA_BUNDLE.is_file():
        raise ImageBuildError(f"no CA bundle at {HOST_CA_BUNDLE}: install ca-certificates")
    print(f"building the stand-in base {tag} (Debian {SUITE} + {' '.join(TORCH)})", file=sys.stderr)
    # pip in the chroot reads the packages' indexes itself: not the test run's PIP_NO_INDEX.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    source = subprocess.Popen(_bootstrap_command(), stdout=subprocess.PIPE, env=environment)
    imported = subprocess.run(
        ["docker", "import", *(f"--change={c}" for c in _import_changes()), "-", tag],
        stdin=source.stdout, capture_output=True, text=True,
    )  # fmt: skip
    source.stdout.close()
    if source.wait() != 0 or imported.returncode != 0:
        docker("image", "rm", tag, check=False)
        raise ImageBuildError(
            f"stand-in base {tag}: mmdebstrap exited {source.returncode}, docker import "
            f"{imported.returncode}: {imported.stderr.strip()[-1000:]}"
        )


def build(base: str | None = None) -> str:
    """The project image's tag, building the stand-in base and the image when missing."""
    started = time.monotonic()
    if base is None:
        base = standin_tag()
        if not image_exists(base):
            build_standin(base)
    tag = image_tag(base)
    if not image_exists(tag):
        print(f"building {tag} on {base}", file=sys.stderr)
        result = docker("build", "--quiet", "--build-arg", f"BASE={base}", "--tag", tag, str(ROOT))
        if not image_exists(tag):
            raise ImageBuildError(f"docker build made no {tag}: {result.stdout[-1000:]}")
    print(f"{tag} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.project_image", description=__doc__)
    parser.add_argument("command", choices=["build", "tag"])
    parser.add_argument("--base", help="base image (default: a stand-in built here)")
    args = parser.parse_args(argv)
    try:
        print(
            build(args.base) if args.command == "build" else image_tag(args.base or standin_tag())
        )
    except ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
