"""Pinned container images and the exact packages their steps install at run time.

The committed YAML must run as uploaded, so every component names a public image
by an exact tag and installs a lock: every package it needs, transitive ones
included, at an exact version, with pip's --no-deps (scripts/lock_runtime.py
writes src/build/locks/; a test holds the locks equal to pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path(__file__).resolve().parent / "locks"
# What KFP's executor imports besides kfp itself (kfp is installed without its CLI and client deps).
KFP_RUNTIME = ("docstring-parser", "PyYAML")


@dataclass(frozen=True)
class BaseImage:
    name: str  # the lock's file name
    image: str
    python: str
    packages: tuple[str, ...]  # what the steps import, at their pyproject.toml pins
    ships: tuple[str, ...] = ()  # what the image already has (never reinstalled)

    def lock(self) -> tuple[str, ...]:
        """The pip arguments of this image's steps: --no-deps and every pinned package."""
        lines = (LOCK_DIR / f"{self.name}.txt").read_text().splitlines()
        return ("--no-deps", *(line for line in lines if line and not line.startswith("#")))


DATA = BaseImage("data", "python:3.11.10-slim-bookworm", "3.11", ("google-cloud-storage", "pillow"))
GAN = BaseImage(
    "gan",
    "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
    "3.11",
    (
        "google-cloud-storage",
        "lightweight-gan",
        "kornia",
        "einops",
        "pillow",
        "numpy",
        "tensorboardX",
    ),
    ships=("torch==2.5.1", "torchvision==0.20.1"),
)
IMAGES = (DATA, GAN)
