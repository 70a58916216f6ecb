"""The optional project image: Dockerfile pins, Cloud Build tag, and `compile --image`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import src
from src.build.images import DATA_PACKAGES, GAN_PACKAGES
from src.cli.main import main
from src.pipeline import COMPILED_FILES

IMAGE = "us-central1-docker.pkg.dev/my-project/ml-images/lwgan-kfp:0.1.0"


def test_dockerfile_installs_exactly_the_runtime_pins():
    text = Path("Dockerfile").read_text()
    installed = set(re.findall(r"([a-z0-9-]+==[0-9.]+)", text))
    assert installed == set(DATA_PACKAGES) | set(GAN_PACKAGES) | {"kfp==2.17.3"}
    assert re.search(r"^FROM \S+:\S+$", text, re.M) and ":latest" not in text


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
