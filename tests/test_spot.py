"""Spot training: `compile --spot` and `submit --spot` on both backends, and what they refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.build.accelerators import GPUS
from src.cli.main import main
from src.common import runtime_env
from src.pipeline import COMPILED_FILES, compile_all
from tests.test_embedded_code import MAX_FILE_BYTES
from tests.test_submit_kfp import submit as submit_kfp
from tests.test_submit_vertex import BASE, SOURCE

ROOT = Path(__file__).resolve().parents[1]
BOARD = "projects/my-project/locations/us-central1/tensorboards/4242"


def documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def spot_files(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("spot")
    code = main(["compile", "--spot", "--out-dir", str(out), "--tensorboard", BOARD,
                 "--service-account", "trainer@my-project.iam.gserviceaccount.com",
                 "--network", "projects/123/global/networks/vpc", "--enable-web-access"])  # fmt: skip
    assert code == 0
    return {target: out / name for target, name in COMPILED_FILES.items()}


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory) -> dict[str, Path]:
    return compile_all(tmp_path_factory.mktemp("plain"))


def custom_job_inputs(spec: dict) -> dict:
    params = spec["components"]["comp-train-gan"]["inputDefinitions"]["parameters"]
    return {name: value.get("defaultValue") for name, value in params.items()}


def test_the_vertex_worker_runs_the_very_command_of_the_plain_train_step(spot_files, plain_files):
    spot, plain = documents(spot_files["vertex"])[0], documents(plain_files["vertex"])[0]
    (pool,) = custom_job_inputs(spot)["worker_pool_specs"]
    container = plain["deploymentSpec"]["executors"]["exec-train-gan"]["container"]
    assert pool["container_spec"]["command"] == container["command"]
    assert pool["container_spec"]["image_uri"] == container["image"]


def test_the_vertex_custom_job_asks_for_spot_capacity_of_the_gpus_usual_machine(spot_files):
    inputs = custom_job_inputs(documents(spot_files["vertex"])[0])
    (pool,) = inputs["worker_pool_specs"]
    assert inputs["strategy"] == "SPOT" and inputs["restart_job_on_worker_restart"] is True
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1,
    }  # fmt: skip
    assert inputs["tensorboard"] == BOARD and inputs["enable_web_access"] is True
    assert inputs["service_account"] == "trainer@my-project.iam.gserviceaccount.com"
    assert inputs["network"] == "projects/123/global/networks/vpc"
    env = {item["name"]: item["value"] for item in pool["container_spec"]["env"]}
    assert env == {runtime_env.SPOT: "1", runtime_env.TENSORBOARD: BOARD}
    task = documents(spot_files["vertex"])[0]["root"]["dag"]["tasks"]["train-gan"]
    assert task["retryPolicy"]["maxRetryCount"] >= 8
    # Vertex derives AIP_TENSORBOARD_LOG_DIR from it: a folder of the pipeline job's own
    assert task["inputs"]["parameters"]["base_output_directory"] == {
        "runtimeValue": {"constant": "{{$.pipeline_root}}/{{$.pipeline_job_uuid}}/train-gan"}
    }


def test_the_gke_spot_file_selects_spot_nodes_beside_the_gpu(spot_files):
    spec, platform = documents(spot_files["kfp"])
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-gan"]
    assert k8s["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4", "cloud.google.com/gke-spot": "true",
    }  # fmt: skip
    assert {"effect": "NoSchedule", "key": "cloud.google.com/gke-spot", "operator": "Equal",
            "value": "true"} in k8s["tolerations"]  # fmt: skip
    env = spec["deploymentSpec"]["executors"]["exec-train-gan"]["container"]["env"]
    assert {"name": runtime_env.SPOT, "value": "1"} in env


@pytest.mark.parametrize("target", sorted(COMPILED_FILES))
def test_spot_files_fit_the_budget(spot_files, target):
    assert spot_files[target].stat().st_size <= MAX_FILE_BYTES


def test_the_committed_default_files_stay_on_demand(spot_files):
    committed = documents(ROOT / "compiled" / COMPILED_FILES["vertex"])[0]
    assert "exec-train-gan" in committed["deploymentSpec"]["executors"]
    assert "SPOT" not in json.dumps(committed)


def test_a_pipeline_job_builds_from_the_spot_file_offline(spot_files):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.init(
        project="my-project", location="us-central1", credentials=AnonymousCredentials()
    )
    job = aiplatform.PipelineJob(
        display_name="lwgan-spot",
        template_path=str(spot_files["vertex"]),
        pipeline_root="gs://my-root/runs",
        parameter_values={"source_uri": SOURCE},
    )
    tasks = job._gca_resource.pipeline_spec["root"]["dag"]["tasks"]
    assert "train-gan" in tasks


def test_submit_vertex_spot_sends_the_custom_job_with_the_runs_identity(captured):
    code = main([*BASE, "--param", f"source_uri={SOURCE}", "--spot", "--tensorboard", BOARD,
                 "--service-account", "trainer@my-project.iam.gserviceaccount.com"])  # fmt: skip
    assert code == 0
    (request,) = captured["requests"]
    spec = request["job"].pipeline_spec
    inputs = spec["components"]["comp-train-gan"]["inputDefinitions"]["parameters"]
    assert inputs["strategy"]["defaultValue"] == "SPOT"
    assert inputs["service_account"]["defaultValue"] == "trainer@my-project.iam.gserviceaccount.com"
    assert request["job"].service_account == "trainer@my-project.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--accelerator", "NVIDIA_H200_141GB", "--accelerator-count", "8"], "NVIDIA_H200_141GB has no spot offering"),
        (["--tensorboard", "my-board"], "is not a Vertex AI TensorBoard resource: pass projects/"),
        (["--tensorboard", "projects/p/locations/europe-west4/tensorboards/1"], "--tensorboard is in europe-west4, the job runs in us-central1"),
        (["--tensorboard", BOARD], "--tensorboard needs --service-account: Vertex AI refuses a CustomJob"),
    ],
)  # fmt: skip
def test_submit_vertex_refuses_a_spot_run_it_cannot_make_before_sending(
    captured, capsys, extra, problem
):
    assert main([*BASE, "--param", f"source_uri={SOURCE}", "--spot", *extra]) == 2
    assert problem in capsys.readouterr().err
    assert captured["requests"] == []


def test_custom_job_options_without_spot_are_refused_naming_the_flag(tmp_path, capsys):
    assert main(["compile", "--out-dir", str(tmp_path), "--tensorboard", BOARD]) == 2
    assert "--tensorboard belongs to the spot train task: add --spot" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_submit_kfp_spot_without_a_gs_mirror_is_refused_before_anything_is_sent(fake_kfp, capsys):
    assert submit_kfp(fake_kfp, "--spot") == 2
    assert "--spot needs a checkpoint mirror" in capsys.readouterr().err
    assert not fake_kfp.find("POST", "/apis/v2beta1/pipelines/upload")


def test_submit_kfp_spot_with_a_gs_checkpoint_root_uploads_the_spot_file(fake_kfp):
    assert submit_kfp(fake_kfp, "--spot", "--param", "checkpoint_root=gs://ckpt/gan") == 0
    (upload,) = fake_kfp.find("POST", "/apis/v2beta1/pipelines/upload")
    assert b"cloud.google.com/gke-spot" in upload.body


def test_only_gpus_with_a_spot_offering_are_accepted():
    refused = [name for name, gpu in GPUS.items() if not gpu.spot]
    assert refused == ["NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB"]


def test_compile_stays_free_of_gcpc_unless_spot_is_asked_for(tmp_path):
    code = (
        "import sys; from src.cli.main import main; main(['compile', '--out-dir', sys.argv[1]]);"
        "print('google_cloud_pipeline_components' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_compile_refuses_a_tensorboard_without_the_service_account_vertex_requires(
    tmp_path, capsys
):
    assert main(["compile", "--spot", "--out-dir", str(tmp_path), "--tensorboard", BOARD]) == 2
    assert "--tensorboard needs --service-account" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
