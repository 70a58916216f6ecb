"""What the steps install at run time is pinned, agrees with pyproject.toml, and is what tests run."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from src.build.images import IMAGES
from src.pipeline import COMPILED_DIR, COMPILED_FILES

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines) -> dict[str, str]:
    return {canonical(n): v for n, v in (line.split("==") for line in lines if "==" in line)}


PYPROJECT = pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
LOCKS = {image.name: pins(image.lock()[1:]) for image in IMAGES}


@pytest.mark.parametrize("image", IMAGES, ids=lambda image: image.name)
def test_lock_pins_each_step_package_at_its_pyproject_version(image):
    lock = LOCKS[image.name]
    for name in image.packages:
        assert lock[canonical(name)] == PYPROJECT[canonical(name)], name
    shared = set(lock) & set(PYPROJECT)
    assert {n: lock[n] for n in shared} == {n: PYPROJECT[n] for n in shared}
    assert lock["kfp"] == PYPROJECT["kfp"]


def test_locks_agree_with_each_other_and_data_steps_carry_no_gan_packages():
    data, gan = LOCKS["data"], LOCKS["gan"]
    assert {n: data[n] for n in set(data) & set(gan)} == {n: gan[n] for n in set(data) & set(gan)}
    assert not {"numpy", "torch", "lightweight-gan", "kornia"} & set(data)


def test_image_shipped_packages_are_never_reinstalled():
    for image in IMAGES:
        assert not {canonical(s.split("==")[0]) for s in image.ships} & set(LOCKS[image.name])


@pytest.mark.parametrize("target", sorted(COMPILED_FILES))
def test_every_compiled_step_installs_exactly_its_lock_without_dependencies(target):
    spec = next(yaml.safe_load_all((COMPILED_DIR / COMPILED_FILES[target]).read_text()))
    for name, executor in spec["deploymentSpec"]["executors"].items():
        script = executor["container"]["command"][2]
        (install,) = re.findall(r"pip install --quiet --no-warn-script-location (.*?) &&", script)
        arguments = re.findall(r"'([^']*)'", install)
        image = next(i for i in IMAGES if i.image == executor["container"]["image"])
        assert arguments == list(image.lock()), name


def test_the_test_environment_runs_the_locked_versions():
    for image in IMAGES:
        for name, version in LOCKS[image.name].items():
            assert importlib.metadata.version(name) == version, name
