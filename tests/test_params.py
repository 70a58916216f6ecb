"""One parameter schema: every place that names a parameter agrees with it, and every bad value
is refused at every entry point before any work starts."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from kfp import local

from devtools.http_proxy import HttpProxy
from src import components
from src.backends.local import LocalRunOptions
from src.cli.main import build_parser, main, run_params
from src.data.cleanse import CleanseSettings
from src.gan.config import TrainConfig
from src.gan.training.settings import config_from_params
from src.params.descriptions import DESCRIPTIONS
from src.params.schema import BY_NAME, PARAMS, local_defaults
from src.params.uri_checks import checkpoint_root_problem
from src.params.values import parse_key_value, value_problems
from src.pipeline import COMPILED_DIR, COMPILED_FILES, TRAIN_INPUTS, build_pipeline

ROOT = Path(__file__).resolve().parents[1]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A bad value for every parameter, as a user would type it. Booleans have no bad value of
# their own type: on the command line they get a non-boolean word.
BAD_TEXT = {
    "source_uri": "/data/cats",
    "image_size": "48",
    "batch_size": "0",
    "gradient_accumulate_every": "0",
    "steps": "-5",
    "learning_rate": "0",
    "latent_dim": "0",
    "fmap_max": "-1",
    "attn_res_layers": "33",
    "aug_prob": "2.0",
    "aug_types": "colour",
    "disc_output_size": "3",
    "dual_contrast_loss": "maybe",
    "antialias": "maybe",
    "transparent": "maybe",
    "greyscale": "maybe",
    "save_every": "0",
    "checkpoint_minutes": "-1",
    "seed": "-1",
    "amp": "bf17",
    "num_images": "0",
    "generator": "best",
    "download_workers": "0",
    "near_duplicate_distance": "99",
    "train_processes": "-1",
    "fid_weights_uri": "/home/me/inception.pth",
    "checkpoint_root": "s3://other-cloud/ckpt",
    "resume_from": "gs://my-bucket/models/run-1/",
}
# The same, typed as a UI passes them (every non-boolean parameter).
BAD_TYPED = {
    name: BY_NAME[name].kind(text)
    for name, text in BAD_TEXT.items()
    if BY_NAME[name].kind is not bool
}


def test_every_parameter_has_a_bad_value_in_these_tests():
    assert set(BAD_TEXT) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(BAD_TEXT))
def test_cli_refuses_a_bad_value_of_each_parameter_before_anything_starts(name, tmp_path, capsys):
    code = main(["run", "--workdir", str(tmp_path), "--param", f"{name}={BAD_TEXT[name]}"])
    assert code == 2
    assert name in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_every_problem_at_once(tmp_path, capsys):
    args = [part for name, text in BAD_TEXT.items() for part in ("--param", f"{name}={text}")]
    assert main(["run", "--workdir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert f"{len(BAD_TEXT)} problems" in err
    missing = [name for name in BAD_TEXT if not re.search(rf"\b{name}\b", err)]
    assert missing == []


def test_attention_at_a_resolution_above_image_size_is_refused(tmp_path, capsys):
    args = ["--param", "attn_res_layers=512", "--param", "image_size=256"]
    assert main(["run", "--workdir", str(tmp_path), *args]) == 2
    assert "attn_res_layers='512' has 512" in capsys.readouterr().err


def test_submit_reports_parameter_and_option_problems_together(capsys):
    args = ["submit", "vertex", "--dry-run", "--param", "generator=best", "--param", "amp=bf17"]
    assert main(args) == 2
    err = capsys.readouterr().err
    for text in ("--project is required", "--region is required", "generator='best'", "amp='bf17'"):
        assert text in err
    assert "source_uri is required" in err


def test_compiled_pipeline_checks_parameters_in_its_first_step():
    spec = yaml.safe_load((COMPILED_DIR / COMPILED_FILES["vertex"]).read_text())
    tasks = spec["root"]["dag"]["tasks"]
    first = [name for name, task in tasks.items() if "dependentTasks" not in task]
    assert first == ["download-images"]
    checked = spec["components"]["comp-download-images"]["inputDefinitions"]["parameters"]
    assert set(BY_NAME) <= set(checked)
    wired = tasks["download-images"]["inputs"]["parameters"]
    assert {name: wired[name]["componentInputParameter"] for name in BY_NAME} == {
        name: name for name in BY_NAME
    }


@pytest.mark.slow
def test_bad_values_typed_into_a_ui_fail_in_the_first_step_before_any_object_request(
    emulator, tmp_path, capfd, monkeypatch
):
    # Given the compiled local pipeline pointed at the emulator through a recording proxy
    with HttpProxy(emulator.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(tmp_path),
            raise_on_error=True,
        )
        # When it runs with a bad value for every parameter that a UI can type
        with pytest.raises(RuntimeError) as failure:
            build_pipeline("local")(**{**local_defaults(), **BAD_TYPED})
    # Then the first step failed, naming each value, and no object was ever requested
    assert "download-images" in _ANSI.sub("", str(failure.value))
    log = _ANSI.sub("", "".join(capfd.readouterr()))
    assert [name for name in BAD_TYPED if not re.search(rf"\b{name}=", log)] == []
    assert proxy.paths == []
    assert not list(tmp_path.glob("*/download-images/images/*"))


def test_compiled_pipeline_declares_exactly_the_schema():
    spec = yaml.safe_load((COMPILED_DIR / COMPILED_FILES["vertex"]).read_text())
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == set(BY_NAME)
    kinds = {int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE", str: "STRING", bool: "BOOLEAN"}
    for param in PARAMS:
        entry = declared[param.name]
        assert entry["parameterType"] == kinds[param.kind], param.name
        assert entry["description"] == DESCRIPTIONS[param.name]
        if param.required:
            assert "defaultValue" not in entry and not entry.get("isOptional")
        else:
            assert entry["defaultValue"] == param.compiled, param.name


@pytest.mark.parametrize("name", components.__all__)
def test_component_inputs_named_like_a_parameter_have_its_type_and_no_default_of_their_own(name):
    signature = inspect.signature(getattr(components, name).python_func)
    for input_name, parameter in signature.parameters.items():
        if input_name in BY_NAME:
            assert parameter.annotation is BY_NAME[input_name].kind, input_name
            assert parameter.default is inspect.Parameter.empty, input_name


def test_download_component_takes_every_parameter_to_check_it():
    signature = inspect.signature(components.download_images.python_func)
    assert [name for name in signature.parameters if name in BY_NAME] == [p.name for p in PARAMS]


def test_train_component_takes_every_training_parameter_under_its_own_name():
    signature = inspect.signature(components.train_gan.python_func)
    assert set(TRAIN_INPUTS) <= set(signature.parameters)
    config_fields = {f.name for f in fields(TrainConfig)}
    assert (
        set(TRAIN_INPUTS) - {"train_processes", "checkpoint_root", "resume_from"} <= config_fields
    )


def test_training_and_cleanse_defaults_are_the_local_defaults():
    defaults = local_defaults()
    shared = {f.name for f in fields(TrainConfig)} & set(BY_NAME)
    for name in shared - {"steps", "save_every"}:  # TrainConfig's own 100/50 suit unit tests
        from_schema = getattr(config_from_params(**{name: defaults[name]}), name)
        assert getattr(TrainConfig(), name) == from_schema, name
    settings = CleanseSettings()
    assert settings.image_size == defaults["image_size"]
    assert settings.near_duplicate_distance == defaults["near_duplicate_distance"]


def test_the_documented_parameter_table_is_the_schema():
    table = subprocess.run(
        [sys.executable, "scripts/parameter_table.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table.strip() in (ROOT / "docs" / "parameters.md").read_text(), (
        "docs/parameters.md's table is stale: paste the output of python scripts/parameter_table.py"
    )


def test_run_help_lists_every_parameter_with_its_local_default(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for param in PARAMS:
        assert re.search(rf"^\s+{param.name}\s+{re.escape(repr(param.local_default))}", out, re.M)


def test_transparent_and_greyscale_together_are_refused(tmp_path, capsys):
    args = ["--param", "transparent=true", "--param", "greyscale=true"]
    assert main(["run", "--workdir", str(tmp_path), *args]) == 2
    assert "transparent and greyscale cannot both be on" in capsys.readouterr().err


def test_every_parameter_has_exactly_one_description():
    assert list(DESCRIPTIONS) == [p.name for p in PARAMS]
    assert all(text.strip() for text in DESCRIPTIONS.values())


def test_top_level_help_lists_each_command_once(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("compile", "run", "submit"):
        assert len(re.findall(rf"^\s+{command}\s", out, re.M)) == 1, out


def test_a_parameter_given_by_its_flag_and_by_param_with_different_values_is_refused(
    tmp_path, capsys
):
    # When --steps and --param steps disagree, and so do --source and --param source_uri
    args = ["run", "--workdir", str(tmp_path), "--steps", "5", "--param", "steps=7"]
    args += ["--source", "gs://bucket-a/x/", "--param", "source_uri=gs://bucket-b/y/"]
    # Then nothing runs, and the error names both ways each was given
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "steps is given twice: --steps 5 and --param steps=7" in err
    assert (
        "source_uri is given twice: --source gs://bucket-a/x/ and --param source_uri=gs://bucket-b/y/"
        in err
    )
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_a_parameter_given_twice_with_the_same_value_is_taken():
    args = build_parser().parse_args(["run", "--steps", "5", "--param", "steps=05"])
    assert run_params(args)["steps"] == 5


def test_a_local_run_on_the_bundled_grey_digits_trains_grey_and_one_on_its_own_source_does_not(
    tmp_path,
):
    specs = []
    for given in ({}, {"source_uri": "gs://my-bucket/cats/"}):
        run, lock = LocalRunOptions(given=given, workdir=tmp_path / str(len(specs))).start()
        os.close(lock)
        specs.append(run.spec()["params"])
    assert [spec["greyscale"] for spec in specs] == [True, False]
    assert BY_NAME["greyscale"].compiled is False  # the compiled pipeline keeps colour


@pytest.mark.parametrize(
    "value",
    ["/", "//", "/home", "/home/alice", "/root", "/tmp", "/tmp/../etc", "/a//b", "/gcs/bucket",
     "relative/ckpt", "./ckpt"],
)  # fmt: skip
def test_a_checkpoint_root_that_is_not_a_folder_of_its_own_is_refused_before_anything_starts(
    value, tmp_path, capsys
):
    code = main(["run", "--workdir", str(tmp_path), "--param", f"checkpoint_root={value}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"checkpoint_root={value!r}" in err and "folder for this run's checkpoints alone" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["/tmp/ckpt", "/data/ckpt", "/gcs/bucket/ckpt/", "gs://b-1/c"])
def test_a_checkpoint_root_of_its_own_is_taken(value):
    assert checkpoint_root_problem(value) is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["steps=10000001"], "steps=10000001: use 1 to 10,000,000"),
        (["train_processes=17"], "train_processes=17: use 0 (one per GPU of the train task) or 1 to 16"),
        (["num_images=524289"], "num_images=524289 at image_size=32 is more than the generate step holds"),
        (["num_images=8193", "image_size=256"], "use num_images of at most 8,192"),
    ],
)  # fmt: skip
def test_values_beyond_what_a_step_can_do_are_refused_before_anything_starts(
    given, message, tmp_path, capsys
):
    args = [arg for pair in given for arg in ("--param", pair)]
    assert main(["run", "--workdir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # and the first step, which runs the same checks on values typed into a UI
    values = {**local_defaults(), **dict(parse_key_value(pair) for pair in given)}
    typed = {name: BY_NAME[name].kind(value) for name, value in values.items()}
    assert any(message in problem for problem in value_problems(typed))


def test_a_local_run_with_more_training_processes_than_cores_is_refused(tmp_path, capsys):
    cores = os.cpu_count() or 1
    code = main(["run", "--workdir", str(tmp_path), "--param", f"train_processes={cores + 1}"])
    assert code == 2
    assert f"this machine has {cores} cores" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
