"""Prepares bench/gpu_wheels/: what the GPU check needs that a bare GPU machine lacks.

    python -m bench.gpu_wheels [--python 3.11,3.12,3.13] [--platform manylinux_2_17_x86_64]

A GPU machine brings torch, torchvision, numpy and Pillow; lightweight-gan and the
packages it and the training code import come from here, at the GAN steps' locked
versions (src/build/locks/gan.txt), downloaded for that Python and platform with no
dependency resolution (`pip download --no-deps`), so the folder holds exactly these
(about 10 MB, plus a kornia-rs wheel per Python: it is the one compiled package, so
every Python a GPU machine may have gets its own). `python -m bench.gpu_check` installs
them offline, each package's wheel that fits the Python it runs on.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from bench.gpu_check import WHEELS
from src.build.images import GAN

# Distributions that provide bench.gpu_check.NEEDED.
CARRIED = (
    "lightweight-gan", "kornia", "kornia-rs", "einops", "adabelief-pytorch", "tensorboardx",
    "tabulate", "colorama", "tqdm", "protobuf",
)  # fmt: skip


def requirements() -> list[str]:
    """`name==version` of every carried distribution, as the GAN steps' lock pins it."""
    pins = dict(line.split("==", 1) for line in GAN.lock() if "==" in line)
    missing = [name for name in CARRIED if name not in pins]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in the GAN lock: add it to pyproject.toml")
    return [f"{name}=={pins[name]}" for name in CARRIED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python", default="3.11,3.12,3.13", help="the Pythons a GPU machine may have (3.11+)"
    )
    parser.add_argument("--platform", default="manylinux_2_17_x86_64")
    parser.add_argument("--dest", default=str(WHEELS))
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    shutil.rmtree(dest, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ]
    command += ["--platform", args.platform, "--implementation", "cp", "--dest", str(dest)]
    for version in args.python.split(","):  # pure wheels once; a binary one per version
        subprocess.run([*command, "--python-version", version, *requirements()], check=True)
    wheels = sorted(dest.glob("*.whl"))
    size = sum(path.stat().st_size for path in wheels) / 1e6
    print(f"{len(wheels)} wheels, {size:.1f} MB in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
