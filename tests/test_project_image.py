"""The optional project image: Dockerfile pins, Cloud Build tag, and `compile --image`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import src
from src.build.images import GAN
from src.cli.main import main
from src.pipeline import COMPILED_FILES

IMAGE = "us-central1-docker.pkg.dev/my-project/ml-images/lwgan-kfp:0.1.0"


def test_dockerfile_installs_the_runtime_locks_on_the_gan_base_image_by_default():
    text = Path("Dockerfile").read_text()
    assert re.search(rf"^ARG BASE={re.escape(GAN.image)}$", text, re.M)
    assert re.findall(r"^FROM .*$", text, re.M) == ["FROM ${BASE}"]
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


def test_run_with_an_image_and_no_engine_is_refused_naming_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    code = main(["run", "--workdir", str(tmp_path / "runs"), "--image", "lwgan-kfp:0.1.0-x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--image needs a running Docker engine" in err and "set DOCKER_HOST" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "gs://my-bucket/cats/"], "it takes the bundled sample only: drop --source"),
        (["--resume"], "--resume continues a run in its own image (or none): drop --image"),
    ],
)
def test_run_with_an_image_refuses_what_the_containers_cannot_do(args, message, tmp_path, capsys):
    code = main(["run", "--workdir", str(tmp_path), "--image", "lwgan-kfp:0.1.0-x", *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_standin_base_says_what_it_is_and_the_tags_follow_their_inputs():
    from devtools import project_image

    base = project_image.standin_tag()
    assert base.startswith("lwgan-standin-base-not-pytorch:bookworm-torch2.14.1-")
    assert "latest" not in base and "pytorch/pytorch" not in base
    tag = project_image.image_tag(base)
    assert tag.startswith(f"lwgan-kfp:{src.__version__}-") and tag != project_image.image_tag(
        "other"
    )
