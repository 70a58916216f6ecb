"""The Lightweight GAN pipeline, and the `python -m src.pipeline` entry point.

Steps:
    1. download_images   every parameter checked first; gs:// prefix or archive -> Dataset
    2. cleanse_images    Dataset -> Dataset of equal-size PNGs, Metrics, Markdown report
    3. train_gan         Dataset -> Model (resumable checkpoint + upstream export), Metrics, HTML
    4. generate_images   Model -> Artifact (PNGs, grid), HTML gallery, Metrics (SWD)

One source compiles to a file per backend; they differ only in how the train
task asks for its GPU. The parameters come from `src/params/schema.py`.
"""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real types.

import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from kfp import dsl

from src.build.accelerators import (
    GKE_ACCELERATOR_LABEL,
    GKE_GPU_RESOURCE,
    GKE_SPOT_LABEL,
    GpuRequest,
)
from src.build.embedded_code import for_image
from src.build.ir_yaml import write_ir
from src.build.spot import SPOT_RETRIES, SpotOptions, vertex_spot_component
from src.common import runtime_env
from src.common.errors import ConfigError
from src.components import cleanse_images, download_images, generate_images, train_gan
from src.params.descriptions import DESCRIPTIONS
from src.params.schema import PARAMS

PIPELINE_NAME = "lightweight-gan"
TARGETS = ("vertex", "kfp")
COMPILED_DIR = Path(__file__).resolve().parents[1] / "compiled"
COMPILED_FILES = {"vertex": "lightweight_gan_vertex.yaml", "kfp": "lightweight_gan_kfp.yaml"}
DEFAULT_TRAIN_RETRIES = 3
# The spot CustomJob's output folder on Vertex (its TensorBoard logs go below it): the job's own.
BOARD_FOLDER = f"{dsl.PIPELINE_ROOT_PLACEHOLDER}/{dsl.PIPELINE_JOB_ID_PLACEHOLDER}/train-gan"


def request_gpu(task: dsl.PipelineTask, target: str, gpu: GpuRequest, spot: bool = False) -> None:
    """Asks for the GPU (and the machine around it) the way `target` understands it.

    On Vertex AI a spot task is a CustomJob that names its machine itself (spot.py).
    """
    if target == "vertex" and spot:
        return
    task.set_cpu_limit(gpu.cpu_limit).set_memory_limit(gpu.memory_limit)
    if target == "vertex":
        task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.count)
        return
    from kfp import kubernetes  # only the KFP file carries Kubernetes settings

    cpu, memory = gpu.gke_requests()  # what the GPU's usual node can give: it schedules
    task.set_cpu_request(cpu).set_memory_request(memory)
    task.set_accelerator_type(GKE_GPU_RESOURCE).set_accelerator_limit(gpu.count)
    kubernetes.add_node_selector(
        task, label_key=GKE_ACCELERATOR_LABEL, label_value=gpu.gke_node_label
    )
    kubernetes.add_toleration(task, key=GKE_GPU_RESOURCE, operator="Exists", effect="NoSchedule")
    if spot:  # GKE's spot nodes carry a label and a taint of that name
        kubernetes.add_node_selector(task, label_key=GKE_SPOT_LABEL, label_value="true")
        kubernetes.add_toleration(
            task, key=GKE_SPOT_LABEL, operator="Equal", value="true", effect="NoSchedule"
        )
        task.set_env_variable(runtime_env.SPOT, "1")
    # A pod's /dev/shm is 64 MB; torch's shared memory and NCCL's intra-node transport need more.
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=gpu.shm_size()
    )


def pipeline_signature() -> inspect.Signature:
    """The pipeline's parameters as KFP reads them: required ones first, then defaults."""
    ordered = sorted(PARAMS, key=lambda p: not p.required)
    return inspect.Signature(
        [
            inspect.Parameter(
                p.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=p.kind,
                default=inspect.Parameter.empty if p.required else p.compiled,
            )
            for p in ordered
        ]
    )


def pipeline_docstring() -> str:
    """Description plus one `Args:` line per parameter: the UIs show them as help."""
    lines = ["Download, cleanse, train and sample a Lightweight GAN.", "", "Args:"]
    lines += [
        f"    {p.name}: {DESCRIPTIONS[p.name]}"
        for p in sorted(PARAMS, key=lambda p: not p.required)
    ]
    return "\n".join(lines)


def build_pipeline(
    target: str,
    gpu: GpuRequest | None = None,
    *,
    train_retries: int = DEFAULT_TRAIN_RETRIES,
    image: str | None = None,
    spot: SpotOptions | None = None,
) -> Callable:
    """The pipeline for `target`: 'vertex', 'kfp', or 'local' (no GPU, no retries).

    `image` runs every step on a project image (see Dockerfile) instead of stock
    images plus pinned packages and embedded code. `spot` trains on spot capacity.
    """
    if target not in (*TARGETS, "local"):
        raise ConfigError(
            f"unknown target {target!r}: choose one of {', '.join((*TARGETS, 'local'))}"
        )
    gpu = (gpu or GpuRequest()).validated(target) if target != "local" else None
    if train_retries < 0:
        raise ConfigError(f"--train-retries {train_retries}: use 0 or more")
    if spot is not None and (problems := spot.problems(gpu)):
        raise ConfigError.from_problems(problems)
    download_step, cleanse_step, train_step, generate_step = (
        for_image(component, image)
        for component in (download_images, cleanse_images, train_gan, generate_images)
    )
    spot_inputs = {}
    if spot is not None:
        train_retries = max(train_retries, SPOT_RETRIES)
        if target == "vertex":
            train_step = vertex_spot_component(train_step, gpu, spot)
            # Vertex streams AIP_TENSORBOARD_LOG_DIR, below the job's output folder, to the board:
            # one folder per pipeline job (retries of the task continue its curves), as GCPC's
            # own Vertex components name theirs.
            spot_inputs = {"base_output_directory": BOARD_FOLDER} if spot.tensorboard else {}
    signature = pipeline_signature()

    def lightweight_gan(*values):
        p = dict(zip(signature.parameters, values, strict=True))
        # It takes every parameter to check them all before downloading anything.
        download = download_step(**p)
        # The cache key cannot see the bucket's contents: always list and download afresh.
        # Locally every run has a cache of its own, which only `run --resume` of it reuses.
        download.set_caching_options(target == "local")

        cleanse = cleanse_step(
            raw_images=download.outputs["images"],
            image_size=p["image_size"],
            min_images=p["batch_size"],
            transparent=p["transparent"],
            greyscale=p["greyscale"],
            near_duplicate_distance=p["near_duplicate_distance"],
        )

        train = train_step(
            images=cleanse.outputs["cleansed"],
            **{name: p[name] for name in TRAIN_INPUTS},
            **spot_inputs,
        )
        if gpu is not None:
            request_gpu(train, target, gpu, spot=spot is not None)
            # A retried (e.g. preempted) attempt resumes from the mirrored checkpoint (see train_gan).
            train.set_retry(num_retries=train_retries, backoff_duration="60s", backoff_factor=2.0)

        generate_step(
            model=train.outputs["model"],
            real_images=cleanse.outputs["cleansed"],
            num_images=p["num_images"],
            seed=p["seed"],
            generator=p["generator"],
            fid_weights_uri=p["fid_weights_uri"],
        )

    lightweight_gan.__signature__ = signature
    lightweight_gan.__doc__ = pipeline_docstring()
    return dsl.pipeline(name=PIPELINE_NAME)(lightweight_gan)


# Pipeline parameters that train_gan takes under the same name.
TRAIN_INPUTS = (
    "image_size",
    "batch_size",
    "gradient_accumulate_every",
    "steps",
    "learning_rate",
    "latent_dim",
    "fmap_max",
    "attn_res_layers",
    "aug_prob",
    "aug_types",
    "disc_output_size",
    "dual_contrast_loss",
    "antialias",
    "transparent",
    "greyscale",
    "save_every",
    "checkpoint_minutes",
    "seed",
    "amp",
    "train_processes",
    "checkpoint_root",
    "resume_from",
)


def compile_pipeline(
    target: str,
    output: Path,
    gpu: GpuRequest | None = None,
    *,
    train_retries: int = DEFAULT_TRAIN_RETRIES,
    image: str | None = None,
    spot: SpotOptions | None = None,
) -> Path:
    """Writes the IR YAML for `target` to `output`."""
    pipeline = build_pipeline(target, gpu, train_retries=train_retries, image=image, spot=spot)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_ir(pipeline, output)
    return output


def compile_all(
    out_dir: Path = COMPILED_DIR,
    gpu: GpuRequest | None = None,
    *,
    train_retries: int = DEFAULT_TRAIN_RETRIES,
    image: str | None = None,
    spot: SpotOptions | None = None,
) -> dict[str, Path]:
    """Compiles the Vertex and KFP files into `out_dir`."""
    return {
        target: compile_pipeline(
            target,
            out_dir / COMPILED_FILES[target],
            gpu,
            train_retries=train_retries,
            image=image,
            spot=spot,
        )
        for target in TARGETS
    }


if __name__ == "__main__":
    # The entry point users type; the CLI package sits above this module and imports it.
    from src.cli.main import main

    sys.exit(main())
