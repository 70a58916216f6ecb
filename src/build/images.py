"""Pinned container images and packages that the compiled components run with.

The committed YAML must run as uploaded, so every component names a public
image by an exact tag and installs exact versions. `pyproject.toml` pins the
same versions so that a local run resolves them without a network.
"""

from __future__ import annotations

DATA_IMAGE = "python:3.11.10-slim-bookworm"
TORCH_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"

CHECK_PACKAGES: tuple[str, ...] = ()
DATA_PACKAGES: tuple[str, ...] = (
    "google-cloud-storage==3.17.1",
    "pillow==13.0.0",
)
GAN_PACKAGES: tuple[str, ...] = (
    "google-cloud-storage==3.17.1",
    "lightweight-gan==1.2.1",
    "kornia==0.9.0",
    "einops==0.8.2",
    "pillow==13.0.0",
    "numpy==2.4.6",
)
