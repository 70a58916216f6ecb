"""The project's code travels inside the compiled command: run one as a backend would."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from devtools.compiled_steps import executor_input, load_spec, metrics_of, run_step
from src import components
from src.backends.sample import SAMPLE_DIR
from src.build.embedded_code import (
    SRC_ROOT,
    archive_b85,
    step_modules,
    strip_text,
    unpack_archive,
)
from src.params.schema import local_defaults
from src.pipeline import COMPILED_DIR, COMPILED_FILES
from tests.support.datasets import cleansed_images, raw_dataset

SPEC = load_spec(COMPILED_DIR / COMPILED_FILES["vertex"])
SMALL = {"image_size": 32, "batch_size": 2, "steps": 2, "latent_dim": 32, "fmap_max": 16}


def run_compiled(task: str, inputs: dict[str, Path], tmp_path: Path, **params):
    """Runs `task`'s command from the Vertex YAML in an empty folder where `src` is not importable."""
    out = tmp_path / "out"
    payload = executor_input(SPEC, task, {**local_defaults(), **SMALL, **params}, inputs, out)
    env_bin = Path(sys.executable).parent
    return run_step(SPEC, task, payload, tmp_path / "empty", env_bin, timeout_s=300), out


def test_compiled_cleanse_command_runs_outside_the_repository(tmp_path):
    # Given a finished download and the cleanse executor exactly as compiled for Vertex
    raw = raw_dataset(SAMPLE_DIR, tmp_path / "raw", "digit_00*.png")
    # When it runs as compiled, in an empty folder where `src` cannot be imported
    result, out = run_compiled("cleanse-images", {"raw_images": raw}, tmp_path, min_images=2)
    # Then the embedded modules did the work and wrote typed outputs
    assert result.returncode == 0, result.stderr[-3000:]
    assert metrics_of(out)["kept"] == 10
    assert len(cleansed_images(out / "cleansed")) == 10


def test_compiled_train_command_spawns_data_parallel_processes(cleansed_sample, tmp_path):
    # Given cleansed images and the train executor exactly as compiled, asked for 2 processes
    # When it runs where `src` exists only inside the command (spawned ranks must find it too)
    result, out = run_compiled(
        "train-gan", {"images": cleansed_sample}, tmp_path, save_every=1, train_processes=2
    )
    # Then both ranks trained and rank 0 wrote the model
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on 2 processes" in result.stderr
    metrics = metrics_of(out)
    assert metrics["world_size"] == 2 and metrics["end_step"] == 2
    assert (out / "model" / "checkpoint.pt").is_file()


STEPS = {name: getattr(components, name) for name in components.__all__}
NOT_SHIPPED = ("src/cli/", "src/backends/", "src/build/", "src/components/", "src/pipeline.py")


def archive_names(func, root: Path = SRC_ROOT) -> list[str]:
    return list(unpack_archive(archive_b85(step_modules(func, root), root)))


@pytest.mark.parametrize("name", sorted(STEPS))
def test_each_step_ships_no_cli_submission_runner_emulator_or_compile_code(name):
    names = archive_names(STEPS[name].python_func)
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]


@pytest.mark.parametrize("name", ["download_images", "cleanse_images"])
def test_data_steps_ship_no_gan_code(name):
    names = archive_names(STEPS[name].python_func)
    assert not [n for n in names if n.startswith("src/gan/")]
    assert "src/__init__.py" in names


def test_gan_steps_ship_the_training_modules_they_import():
    assert "src/gan/training/loop.py" in archive_names(STEPS["train_gan"].python_func)
    assert "src/gan/sampling/generate.py" in archive_names(STEPS["generate_images"].python_func)


def test_the_generate_step_ships_no_training_code():
    names = archive_names(STEPS["generate_images"].python_func)
    assert [n for n in names if n.startswith("src/gan/training/")] == []


def step_archives(root: Path) -> dict[str, str]:
    return {name: archive_b85(step_modules(c.python_func, root), root) for name, c in STEPS.items()}


def test_editing_cli_code_changes_no_step_and_training_code_only_the_train_step(tmp_path):
    # Given a copy of src/ and every step's archive built from it
    root = tmp_path / "src"
    shutil.copytree(SRC_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = step_archives(root)
    # When a CLI and a submission module change, nothing a step ships changes
    for module in ("cli/submit.py", "backends/vertex.py", "pipeline.py"):
        (root / module).write_text((root / module).read_text() + "\nEDITED = True\n")
    assert step_archives(root) == before
    # When the training loop changes, only the step that imports it changes
    loop = root / "gan/training/loop.py"
    loop.write_text(loop.read_text() + "\nX = 1\n")
    after = step_archives(root)
    assert [name for name in STEPS if after[name] != before[name]] == ["train_gan"]


def test_stripping_keeps_code_and_line_numbers():
    source = (SRC_ROOT / "gan/training/loop.py").read_text()
    stripped = strip_text(source)
    assert stripped.count("\n") == source.count("\n")
    assert ast.dump(ast.parse(stripped)) != ast.dump(ast.parse(source))  # docstrings went
    without_docs = [
        type(node).__name__ for node in ast.walk(ast.parse(stripped))
        if not isinstance(node, ast.Constant)
    ]  # fmt: skip
    assert without_docs == [
        type(node).__name__ for node in ast.walk(ast.parse(source))
        if not isinstance(node, ast.Constant)
    ]  # fmt: skip
    assert "#" not in "".join(line.split("'")[0].split('"')[0] for line in stripped.splitlines())


# Issue 18 allowed up to 128 KB once the GPU, reliability and spot fixes could not fit in 100 KB
# by design alone (the note says what was tried); 120 KB leaves the rest as a margin.
MAX_FILE_BYTES = 120_000
MAX_ARGUMENT_BYTES = 32 * 1024


@pytest.mark.parametrize("target", sorted(COMPILED_FILES))
def test_committed_files_fit_real_backends_budgets(target):
    path = COMPILED_DIR / COMPILED_FILES[target]
    assert path.stat().st_size <= MAX_FILE_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    spec = next(yaml.safe_load_all(path.read_text()))
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        longest = max(len(part.encode()) for part in [*container["command"], *container["args"]])
        assert longest <= MAX_ARGUMENT_BYTES, f"{name}: an argument of {longest} bytes"
