"""`submit vertex`: the exact PipelineJob request, captured instead of sent."""

from __future__ import annotations

import json

import pytest
from google.cloud.aiplatform import pipeline_jobs

from src.cli.main import main

SOURCE = "gs://my-images/cats/"
BASE = [
    "submit",
    "vertex",
    "--project",
    "my-project",
    "--region",
    "us-central1",
    "--pipeline-root",
    "gs://my-root/runs",
]


def test_submit_sends_parameters_root_identity_labels_and_gpu(captured):
    code = main([
        *BASE, "--param", f"source_uri={SOURCE}", "--param", "steps=2000", "--param", "dual_contrast_loss=true",
        "--service-account", "trainer@my-project.iam.gserviceaccount.com",
        "--network", "projects/123/global/networks/vpc", "--label", "team=gan", "--no-cache",
        "--accelerator", "NVIDIA_L4", "--accelerator-count", "2", "--cpu-limit", "16", "--memory-limit", "64G",
        "--kms-key", "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k", "--job-id", "gan-run-1",
    ])  # fmt: skip
    assert code == 0
    (request,) = captured["requests"]
    job = request["job"]
    assert request["parent"] == "projects/my-project/locations/us-central1"
    assert request["job_id"] == "gan-run-1"
    assert job.service_account == "trainer@my-project.iam.gserviceaccount.com"
    assert job.network == "projects/123/global/networks/vpc"
    assert job.labels["team"] == "gan"
    assert job.encryption_spec.kms_key_name.endswith("cryptoKeys/k")
    assert job.runtime_config.gcs_output_directory == "gs://my-root/runs"
    values = job.runtime_config.parameter_values
    assert (
        values["source_uri"] == SOURCE
        and values["steps"] == 2000
        and values["dual_contrast_loss"] is True
    )
    spec = json.loads(type(job).to_json(job))["pipelineSpec"]
    resources = spec["deploymentSpec"]["executors"]["exec-train-gan"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert resources["accelerator"]["resourceCount"] == "2"
    assert resources["resourceCpuLimit"] == "16" and resources["resourceMemoryLimit"] == "64G"
    assert spec["root"]["dag"]["tasks"]["train-gan"]["retryPolicy"]["maxRetryCount"] == 3
    assert all(
        not task.get("cachingOptions", {}).get("enableCache")
        for task in spec["root"]["dag"]["tasks"].values()
    )


def test_wait_follows_the_job_and_exits_non_zero_on_failure(captured):
    captured["final_state"] = "PIPELINE_STATE_FAILED"
    assert main([*BASE, "--param", f"source_uri={SOURCE}", "--wait"]) == 1


def test_dry_run_prints_the_request_and_sends_nothing(captured, capsys):
    assert (
        main(
            [
                *BASE,
                "--param",
                f"source_uri={SOURCE}",
                "--dry-run",
                "--service-account",
                "sa@x.iam.gserviceaccount.com",
            ]
        )
        == 0
    )
    assert captured["requests"] == []
    printed = json.loads(capsys.readouterr().out)
    job = printed["request"]["pipeline_job"]
    assert job["service_account"] == "sa@x.iam.gserviceaccount.com"
    assert (
        job["pipeline_spec_summary"]["train_resources"]["accelerator"]["resourceType"]
        == "NVIDIA_TESLA_T4"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["submit", "vertex", "--region", "us-central1", "--pipeline-root", "gs://r/x"],
            "--project is required",
        ),
        (
            ["submit", "vertex", "--project", "p", "--pipeline-root", "gs://r/x"],
            "--region is required",
        ),
        ([*BASE[:-1], "/tmp/root"], "must be a gs:// URI"),
        ([*BASE, "--accelerator", "NVIDIA_TESLA_T5"], "unknown accelerator 'NVIDIA_TESLA_T5'"),
        ([*BASE, "--param", "epochs=3"], "unknown pipeline parameter 'epochs'"),
        ([*BASE, "--param", "batch_size=big"], "batch_size='big' is not a valid int"),
        ([*BASE, "--label", "Team=GAN"], "label Team=GAN"),
        (
            [*BASE[:5], "us-central", *BASE[6:]],
            "--region 'us-central' is not a Vertex AI region: did you mean us-central1",
        ),
        ([*BASE[:5], "us-central", *BASE[6:], "--dry-run"], "did you mean us-central1"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_no_request(captured, capsys, args, message):
    if "source_uri" not in " ".join(args):
        args = [*args, "--param", f"source_uri={SOURCE}"]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert captured["requests"] == []


def test_schedule_creates_a_cron_schedule(monkeypatch, captured):
    calls = {}

    def create_schedule(self, cron, display_name, **kwargs):
        calls.update(cron=cron, display_name=display_name, **kwargs)

        class Schedule:
            resource_name = "projects/p/locations/l/schedules/1"

        return Schedule()

    monkeypatch.setattr(pipeline_jobs.PipelineJob, "create_schedule", create_schedule)
    assert (
        main(
            [
                *BASE,
                "--param",
                f"source_uri={SOURCE}",
                "--schedule",
                "0 3 * * 1",
                "--service-account",
                "sa@x.iam.gserviceaccount.com",
            ]
        )
        == 0
    )
    assert (
        calls["cron"] == "0 3 * * 1" and calls["service_account"] == "sa@x.iam.gserviceaccount.com"
    )


def test_help_marks_required_flags_and_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["submit", "vertex", "--help"])
    out = capsys.readouterr().out
    required = out[out.index("required:") :]
    for flag in ("--project", "--region", "--pipeline-root"):
        assert flag in required.split("options:")[0]
    assert "examples:" in out and "source_uri" in out


def test_a_schedules_dry_run_needs_no_credentials(monkeypatch, tmp_path, capsys):
    # Given a machine with no Google credentials at all
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    # When a schedule is dry-run, then it shows the request and asks for nothing
    args = [*BASE, "--param", f"source_uri={SOURCE}", "--schedule", "0 3 * * 1", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0 3 * * 1" in out and "credentials" not in out
