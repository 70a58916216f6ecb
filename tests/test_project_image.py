"""The optional project image: Dockerfile pins, Cloud Build tag, and `compile --image`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import src
from src.build.images import GAN
from src.cli.main import main
from src.pipeline import COMPILED_FILES

IMAGE = "us-central1-docker.pkg.dev/my-project/ml-images/lwgan-kfp:0.1.0"


def test_dockerfile_installs_the_runtime_locks_on_the_gan_base_image():
    text = Path("Dockerfile").read_text()
    assert re.search(rf"^FROM {re.escape(GAN.image)}$", text, re.M)
    assert "pip install --no-deps -r /tmp/locks/data.txt -r /tmp/locks/gan.txt" in text


def test_cloud_build_tags_the_image_with_the_project_version():
    build = yaml.safe_load(Path("cloudbuild.yaml").read_text())
    assert build["substitutions"]["_VERSION"] == src.__version__
    assert build["images"][0].endswith(":${_VERSION}")


def test_compile_with_image_uses_it_everywhere_and_installs_nothing(tmp_path):
    assert main(["compile", "--out-dir", str(tmp_path), "--image", IMAGE]) == 0
    for name in COMPILED_FILES.values():
        spec = next(yaml.safe_load_all((tmp_path / name).read_text()))
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["image"] == IMAGE
            command = " ".join(container["command"])
            assert "pip install" not in command
            assert "__KFP_EMBEDDED_ARCHIVE_B64" not in command
