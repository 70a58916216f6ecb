"""The compiled IR: GPU settings per backend, typed artifacts, reproducibility, loadability."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.build.accelerators import (
    DAEMON_SET_CPU,
    DAEMON_SET_MEMORY_GIB,
    GPUS,
    VERTEX_ACCELERATORS,
    GpuRequest,
    gke_allocatable,
    quantity,
)
from src.cli.main import main
from src.pipeline import COMPILED_DIR, COMPILED_FILES, compile_all, compile_pipeline


def load_documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    return compile_all(tmp_path_factory.mktemp("compiled"))


def train_resources(spec: dict) -> dict:
    return spec["deploymentSpec"]["executors"]["exec-train-gan"]["container"]["resources"]


def test_vertex_train_task_asks_for_a_t4_by_enum(compiled):
    spec, *rest = load_documents(compiled["vertex"])
    resources = train_resources(spec)
    assert resources["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert resources["resourceCpuLimit"] == "8"
    assert resources["resourceMemoryLimit"] == "30G"
    assert rest == [], "a Vertex file must be a single YAML document"


def test_kfp_train_task_asks_for_nvidia_gpu_with_gke_node_selector_and_toleration(compiled):
    spec, platform = load_documents(compiled["kfp"])
    assert train_resources(spec)["accelerator"]["resourceType"] == "nvidia.com/gpu"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-gan"]
    assert k8s["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert k8s["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]


def test_only_the_train_task_asks_for_a_gpu(compiled):
    spec = load_documents(compiled["vertex"])[0]
    with_gpu = [
        name
        for name, executor in spec["deploymentSpec"]["executors"].items()
        if "accelerator" in executor["container"].get("resources", {})
    ]
    assert with_gpu == ["exec-train-gan"]


def test_the_two_files_differ_only_in_the_gpu_request(compiled):
    vertex = load_documents(compiled["vertex"])[0]
    kfp_spec = load_documents(compiled["kfp"])[0]
    for spec in (vertex, kfp_spec):
        resources = spec["deploymentSpec"]["executors"]["exec-train-gan"]["container"]["resources"]
        for key in ("accelerator", "cpuRequest", "memoryRequest", "resourceCpuRequest", "resourceMemoryRequest"):  # fmt: skip
            resources.pop(key, None)
    assert vertex == kfp_spec


def test_the_kfp_train_task_requests_what_its_usual_node_can_give(compiled):
    # GKE allocatable on an n1-standard-8 (the usual T4 node): 7.91 CPU, 26.46 GiB; GPU-node daemon
    # sets take some of it (notes: about 7.9 CPU and 26.6 GB before them)
    resources = train_resources(load_documents(compiled["kfp"])[0])
    cpu, memory = (
        quantity(resources["resourceCpuRequest"]),
        quantity(resources["resourceMemoryRequest"]),
    )
    assert 6.5 <= cpu <= 7.91 - DAEMON_SET_CPU and 20 * 2**30 <= memory <= 26.46 * 2**30 - 2**30
    assert quantity(resources["resourceCpuLimit"]) >= cpu
    assert quantity(resources["resourceMemoryLimit"]) >= memory
    vertex = train_resources(load_documents(compiled["vertex"])[0])
    assert "resourceCpuRequest" not in vertex and "resourceMemoryRequest" not in vertex


@pytest.mark.parametrize(
    ("accelerator", "count"),
    [(name, count) for name, gpu in GPUS.items() for count in gpu.machines],
)
def test_every_gpu_machine_gets_requests_that_fit_its_node_and_limits_above_them(
    accelerator, count
):
    gpu = GpuRequest(accelerator, count).validated("kfp")
    cpu, memory = (quantity(value) for value in gpu.gke_requests())
    allocatable_cpu, allocatable_memory = gke_allocatable(gpu.machine)
    assert 0 < cpu <= allocatable_cpu - DAEMON_SET_CPU + 1e-9 <= quantity(gpu.cpu_limit) + 1e-9
    assert 0 < memory <= allocatable_memory - DAEMON_SET_MEMORY_GIB * 2**30
    assert memory <= quantity(gpu.memory_limit)


def test_the_kfp_train_task_mounts_a_memory_backed_dev_shm(compiled):
    platform = load_documents(compiled["kfp"])[1]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-gan"]
    (volume,) = k8s["emptyDirMounts"]
    assert volume["mountPath"] == "/dev/shm" and volume["medium"] == "Memory"
    assert quantity(volume["sizeLimit"]) >= 2**30  # a pod's own /dev/shm is 64 MB


def test_compile_options_override_accelerator_type_and_count(tmp_path):
    main(
        [
            "compile",
            "--out-dir",
            str(tmp_path),
            "--accelerator",
            "nvidia-l4",
            "--accelerator-count",
            "2",
        ]
    )
    vertex = train_resources(load_documents(tmp_path / COMPILED_FILES["vertex"])[0])
    assert vertex["accelerator"] == {
        "count": "2",
        "resourceCount": "2",
        "resourceType": "NVIDIA_L4",
        "type": "NVIDIA_L4",
    }
    platform = load_documents(tmp_path / COMPILED_FILES["kfp"])[1]
    selector = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-gan"][
        "nodeSelector"
    ]
    assert selector["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"


def test_compile_with_an_unknown_accelerator_exits_2_and_writes_nothing(tmp_path, capsys):
    assert main(["compile", "--out-dir", str(tmp_path), "--accelerator", "V100"]) == 2
    assert "unknown accelerator 'V100'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_artifacts_between_tasks_are_typed(compiled):
    spec = load_documents(compiled["vertex"])[0]
    components = spec["components"]

    def outputs(name: str) -> dict[str, str]:
        artifacts = components[f"comp-{name}"]["outputDefinitions"]["artifacts"]
        return {key: value["artifactType"]["schemaTitle"] for key, value in artifacts.items()}

    def inputs(name: str) -> dict[str, str]:
        artifacts = components[f"comp-{name}"]["inputDefinitions"]["artifacts"]
        return {key: value["artifactType"]["schemaTitle"] for key, value in artifacts.items()}

    assert outputs("download-images") == {"images": "system.Dataset"}
    assert inputs("cleanse-images") == {"raw_images": "system.Dataset"}
    assert outputs("cleanse-images") == {
        "cleansed": "system.Dataset",
        "metrics": "system.Metrics",
        "report": "system.Markdown",
        "contact_sheet": "system.HTML",
    }
    assert inputs("train-gan") == {"images": "system.Dataset"}
    assert outputs("train-gan") == {
        "model": "system.Model",
        "metrics": "system.Metrics",
        "training_report": "system.HTML",
    }
    assert inputs("generate-images") == {"model": "system.Model", "real_images": "system.Dataset"}
    assert outputs("generate-images") == {
        "samples": "system.Artifact",
        "gallery": "system.HTML",
        "metrics": "system.Metrics",
    }


def test_task_wiring_follows_the_four_steps(compiled):
    tasks = load_documents(compiled["vertex"])[0]["root"]["dag"]["tasks"]
    train_input = tasks["train-gan"]["inputs"]["artifacts"]["images"]["taskOutputArtifact"]
    assert train_input == {"outputArtifactKey": "cleansed", "producerTask": "cleanse-images"}
    generate_input = tasks["generate-images"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert generate_input == {"outputArtifactKey": "model", "producerTask": "train-gan"}


def test_download_is_never_cached_and_train_is_retried(compiled):
    tasks = load_documents(compiled["vertex"])[0]["root"]["dag"]["tasks"]
    assert tasks["download-images"]["cachingOptions"] == {}
    assert tasks["train-gan"]["retryPolicy"]["maxRetryCount"] == 3


def test_images_are_pinned_by_tag(compiled):
    executors = load_documents(compiled["vertex"])[0]["deploymentSpec"]["executors"]
    images = {executor["container"]["image"] for executor in executors.values()}
    assert all(":" in image and not image.endswith(":latest") for image in images)


def test_committed_yaml_equals_a_fresh_compile(compiled):
    for target, name in COMPILED_FILES.items():
        committed = COMPILED_DIR / name
        assert committed.exists(), f"{committed} missing: run python -m src.pipeline compile"
        assert committed.read_text() == compiled[target].read_text(), (
            f"{committed} is stale: run python -m src.pipeline compile and commit it"
        )


def test_compile_does_not_import_torch_or_aiplatform(tmp_path):
    code = (
        "import sys; from src.cli.main import main; main(['compile', '--out-dir', sys.argv[1]]);"
        "print('torch' in sys.modules, 'google.cloud.aiplatform' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_vertex_accelerator_list_equals_the_aiplatform_enum():
    from google.cloud.aiplatform_v1.types.accelerator_type import AcceleratorType

    names = {member.name for member in AcceleratorType} - {"ACCELERATOR_TYPE_UNSPECIFIED"}
    assert set(VERTEX_ACCELERATORS) == names


def test_vertex_file_builds_a_pipeline_job_offline(compiled):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.init(
        project="demo-project", location="us-central1", credentials=AnonymousCredentials()
    )
    job = aiplatform.PipelineJob(
        display_name="lwgan",
        template_path=str(compiled["vertex"]),
        pipeline_root="gs://demo-bucket/root",
        parameter_values={"source_uri": "gs://demo-bucket/images/", "steps": 100},
        enable_caching=False,
    )
    runtime = job._gca_resource.runtime_config
    assert runtime.gcs_output_directory == "gs://demo-bucket/root"
    assert runtime.parameter_values["steps"] == 100
    assert runtime.parameter_values["source_uri"] == "gs://demo-bucket/images/"


def test_kfp_gpu_request_can_be_compiled_to_any_folder(tmp_path):
    path = compile_pipeline(
        "kfp", tmp_path / "x.yaml", GpuRequest(accelerator="NVIDIA_TESLA_A100", count=4)
    )
    spec, platform = load_documents(path)
    assert train_resources(spec)["accelerator"]["resourceCount"] == "4"
    labels = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-gan"][
        "nodeSelector"
    ]["labels"]
    assert labels == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}


def test_unfolded_yaml_loads_to_exactly_what_the_kfp_compiler_wrote(tmp_path):
    from kfp import compiler

    from src.pipeline import build_pipeline

    for target in ("vertex", "kfp"):
        raw = tmp_path / f"{target}-raw.yaml"
        compiler.Compiler().compile(build_pipeline(target), str(raw))
        ours = compile_pipeline(target, tmp_path / f"{target}.yaml")
        assert load_documents(ours) == load_documents(raw)
        assert ours.read_text().startswith("# PIPELINE DEFINITION\n")
