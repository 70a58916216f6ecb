"""`submit kfp` against a recording fake of the KFP v2beta1 API."""

from __future__ import annotations

import json

import pytest
import yaml

from src.cli.main import main
from tests.support.fake_kfp import FakeKfp

SOURCE = "gs://my-images/cats/"


def submit(fake: FakeKfp, *extra: str) -> int:
    return main(
        [
            "submit",
            "kfp",
            "--host",
            fake.url,
            "--param",
            f"source_uri={SOURCE}",
            "--param",
            "steps=500",
            *extra,
        ]
    )


def test_first_submit_uploads_the_pipeline_and_creates_a_run_in_the_experiment(fake_kfp, capsys):
    code = submit(
        fake_kfp,
        "--experiment",
        "gan-exp",
        "--pipeline-root",
        "gs://my-root/kfp",
        "--token",
        "secret",
    )
    assert code == 0
    upload = fake_kfp.find("POST", "/apis/v2beta1/pipelines/upload")
    assert len(upload) == 1 and upload[0].query["name"] == ["lightweight-gan"]
    assert b'name="uploadfile"' in upload[0].body
    uploaded_yaml = upload[0].body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
    spec, platform = list(yaml.safe_load_all(uploaded_yaml))
    assert (
        spec["deploymentSpec"]["executors"]["exec-train-gan"]["container"]["resources"][
            "accelerator"
        ]["resourceType"]
        == "nvidia.com/gpu"
    )
    assert "kubernetes" in platform["platforms"]
    experiment = json.loads(fake_kfp.find("POST", "/apis/v2beta1/experiments")[0].body)
    assert experiment["display_name"] == "gan-exp"
    run = json.loads(fake_kfp.find("POST", "/apis/v2beta1/runs")[0].body)
    assert run["experiment_id"] == "experiment-1"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "pipeline-1",
        "pipeline_version_id": "version-1",
    }
    assert run["runtime_config"]["parameters"] == {"source_uri": SOURCE, "steps": 500}
    assert run["runtime_config"]["pipeline_root"] == "gs://my-root/kfp"
    assert upload[0].headers["authorization"] == "Bearer secret"
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["run_id"] == "run-1"


def test_second_submit_uploads_a_new_version_of_the_existing_pipeline(fake_kfp):
    assert submit(fake_kfp) == 0
    assert submit(fake_kfp, "--version", "v2") == 0
    versions = fake_kfp.find("POST", "/apis/v2beta1/pipelines/upload_version")
    assert len(versions) == 1
    assert versions[0].query["name"] == ["v2"] and versions[0].query["pipelineid"] == ["pipeline-1"]
    run = json.loads(fake_kfp.find("POST", "/apis/v2beta1/runs")[-1].body)
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "pipeline-1",
        "pipeline_version_id": "version-2",
    }


def test_wait_exits_non_zero_when_the_run_fails(fake_kfp):
    fake_kfp.final_state = "FAILED"
    assert submit(fake_kfp, "--wait") == 1
    assert fake_kfp.find("GET", "/apis/v2beta1/runs/run-1")


def test_dry_run_sends_nothing(fake_kfp, capsys):
    assert submit(fake_kfp, "--dry-run") == 0
    assert fake_kfp.requests == []
    preview = json.loads(capsys.readouterr().out)
    assert "parameters" in preview
    # and names the package by what it is, not by a temporary path that is gone once it exits
    assert (
        preview["package"].startswith("lightweight_gan_kfp.yaml (")
        and "/" not in preview["package"]
    )


def test_unreachable_host_is_refused_with_a_clear_message(capsys):
    code = main(
        ["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", f"source_uri={SOURCE}"]
    )
    assert code == 2
    assert "127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "source_uri is required: pass --param source_uri="),
        (["source_uri=/data/cats"], "is not a GCS URI"),
        (["source_uri=gs://my-images/cats/", "stepz=3"], "unknown pipeline parameter 'stepz'"),
        (["source_uri=gs://my-images/cats/", "steps=many"], "steps='many' is not a valid int"),
        (["source_uri=gs://my-images/cats/", "image_size=100"], "power of two"),
    ],
)
def test_bad_parameters_are_refused_before_any_request(fake_kfp, capsys, params, message):
    args = ["submit", "kfp", "--host", fake_kfp.url]
    for param in params:
        args += ["--param", param]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert fake_kfp.requests == []


def test_a_run_whose_checkpoints_cannot_be_mirrored_is_warned_about_before_submitting(
    fake_kfp, capsys
):
    # Given no gs:// pipeline root and no checkpoint_root: a stock install's root is minio://
    assert submit(fake_kfp, "--dry-run") == 0
    captured = capsys.readouterr()
    # Then the user reads why a retry would restart at step 0, and the parameter that fixes it
    assert "no checkpoint mirror" in captured.err and "starts again at step 0" in captured.err
    assert "--param checkpoint_root=gs://BUCKET/FOLDER" in captured.err
    assert json.loads(captured.out)["warnings"]


@pytest.mark.parametrize(
    "extra",
    [["--param", "checkpoint_root=gs://ckpt/gan"], ["--pipeline-root", "gs://my-root/kfp"]],
)
def test_a_gs_checkpoint_root_or_pipeline_root_needs_no_warning(fake_kfp, capsys, extra):
    assert submit(fake_kfp, "--dry-run", *extra) == 0
    captured = capsys.readouterr()
    assert "no checkpoint mirror" not in captured.err
    assert json.loads(captured.out)["warnings"] == []
