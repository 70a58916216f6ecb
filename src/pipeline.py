"""The Lightweight GAN pipeline and its command line.

Steps:
    1. download_images  gs:// prefix or archive -> Dataset (+ manifest)
    2. cleanse_images   Dataset -> Dataset of equal-size PNGs, Metrics, Markdown report
    3. train_gan        Dataset -> Model (resumable checkpoint + upstream export), Metrics, HTML
    4. generate_images  Model -> Artifact (PNGs, grid), HTML gallery, Metrics (SWD)

One source compiles to a file per backend; they differ only in how the train
task asks for its GPU. Usage: `python -m src.pipeline {compile,run,submit} --help`.
"""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real types.

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kfp import compiler, dsl

from src.accelerators import GKE_ACCELERATOR_LABEL, GKE_GPU_RESOURCE, GpuRequest
from src.components import cleanse_images, download_images, generate_images, train_gan
from src.embedded_code import for_image
from src.pipeline_params import parse_key_value
from src.validation import ConfigError

PIPELINE_NAME = "lightweight-gan"
TARGETS = ("vertex", "kfp")
COMPILED_DIR = Path(__file__).resolve().parents[1] / "compiled"
COMPILED_FILES = {"vertex": "lightweight_gan_vertex.yaml", "kfp": "lightweight_gan_kfp.yaml"}
DEFAULT_SOURCE = "gs://YOUR_BUCKET/images/"


def request_gpu(task: dsl.PipelineTask, target: str, gpu: GpuRequest) -> None:
    """Asks for the GPU the way `target` understands it."""
    task.set_cpu_limit(gpu.cpu_limit).set_memory_limit(gpu.memory_limit)
    if target == "vertex":
        task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.count)
        return
    from kfp import kubernetes

    task.set_accelerator_type(GKE_GPU_RESOURCE).set_accelerator_limit(gpu.count)
    kubernetes.add_node_selector(
        task, label_key=GKE_ACCELERATOR_LABEL, label_value=gpu.gke_node_label
    )
    kubernetes.add_toleration(task, key=GKE_GPU_RESOURCE, operator="Exists", effect="NoSchedule")


def build_pipeline(
    target: str,
    gpu: "GpuRequest | None" = None,
    *,
    train_retries: int = 3,
    image: "str | None" = None,
) -> Callable:
    """The pipeline for `target`: 'vertex', 'kfp', or 'local' (no GPU, no retries).

    `image` runs every step on a project image (see Dockerfile) instead of stock
    images plus pinned packages and embedded code.
    """
    if target not in (*TARGETS, "local"):
        raise ConfigError(
            f"unknown target {target!r}: choose one of {', '.join((*TARGETS, 'local'))}"
        )
    gpu = (gpu or GpuRequest()).validated(target) if target != "local" else None
    if train_retries < 0:
        raise ConfigError(f"train_retries={train_retries} must be 0 or more")
    download_step, cleanse_step, train_step, generate_step = (
        for_image(component, image)
        for component in (download_images, cleanse_images, train_gan, generate_images)
    )

    @dsl.pipeline(
        name=PIPELINE_NAME, description="Download, cleanse, train and sample a Lightweight GAN."
    )
    def lightweight_gan(
        source_uri: str = DEFAULT_SOURCE,
        image_size: int = 256,
        batch_size: int = 10,
        gradient_accumulate_every: int = 4,
        steps: int = 10000,
        learning_rate: float = 2e-4,
        latent_dim: int = 256,
        fmap_max: int = 512,
        attn_res_layers: str = "32",
        aug_prob: float = -1.0,
        aug_types: str = "translation,cutout",
        disc_output_size: int = 1,
        dual_contrast_loss: bool = False,
        antialias: bool = False,
        transparent: bool = False,
        save_every: int = 1000,
        seed: int = 0,
        amp: str = "auto",
        num_images: int = 64,
        generator: str = "auto",
        download_workers: int = 32,
        near_duplicate_distance: int = -1,
        train_processes: int = 0,
        fid_weights_uri: str = "",
    ):
        download = download_step(source_uri=source_uri, workers=download_workers)
        # The cache key cannot see the bucket's contents: always list and download afresh.
        download.set_caching_options(False)

        cleanse = cleanse_step(
            raw_images=download.outputs["images"],
            image_size=image_size,
            min_images=batch_size,
            transparent=transparent,
            near_duplicate_distance=near_duplicate_distance,
        )

        train = train_step(
            images=cleanse.outputs["cleansed"],
            image_size=image_size,
            batch_size=batch_size,
            gradient_accumulate_every=gradient_accumulate_every,
            steps=steps,
            learning_rate=learning_rate,
            latent_dim=latent_dim,
            fmap_max=fmap_max,
            attn_res_layers=attn_res_layers,
            aug_prob=aug_prob,
            aug_types=aug_types,
            disc_output_size=disc_output_size,
            dual_contrast_loss=dual_contrast_loss,
            antialias=antialias,
            transparent=transparent,
            save_every=save_every,
            seed=seed,
            amp=amp,
            processes=train_processes,
        )
        if gpu is not None:
            request_gpu(train, target, gpu)
            # A retried (e.g. preempted) attempt resumes from the checkpoint in its output.
            train.set_retry(num_retries=train_retries, backoff_duration="60s", backoff_factor=2.0)

        generate_step(
            model=train.outputs["model"],
            real_images=cleanse.outputs["cleansed"],
            num_images=num_images,
            seed=seed,
            generator=generator,
            fid_weights_uri=fid_weights_uri,
        )

    return lightweight_gan


def compile_pipeline(
    target: str, output: Path, gpu: GpuRequest | None = None, **options: Any
) -> Path:
    """Writes the IR YAML for `target` to `output`; options go to `build_pipeline`."""
    pipeline = build_pipeline(target, gpu, **options)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return output


def compile_all(
    out_dir: Path = COMPILED_DIR, gpu: GpuRequest | None = None, **options: Any
) -> dict[str, Path]:
    """Compiles the Vertex and KFP files into `out_dir`."""
    return {
        target: compile_pipeline(target, out_dir / COMPILED_FILES[target], gpu, **options)
        for target in TARGETS
    }


def gpu_from_args(args: argparse.Namespace) -> GpuRequest:
    return GpuRequest(args.accelerator, args.accelerator_count, args.cpu_limit, args.memory_limit)


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options that change the compiled YAML: GPU, retries, project image."""
    defaults = GpuRequest()
    parser.add_argument(
        "--train-retries",
        type=int,
        default=3,
        help="retries of the train task; each resumes from its last checkpoint (default %(default)s)",
    )
    parser.add_argument(
        "--image",
        default=None,
        help="run every step on this project image (built from Dockerfile) with nothing "
        "installed at run time; default: stock images, pinned packages, embedded code",
    )
    parser.add_argument(
        "--accelerator",
        default=defaults.accelerator,
        help="GPU type for the train task, e.g. NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100 (default %(default)s)",
    )
    parser.add_argument(
        "--accelerator-count",
        type=int,
        default=defaults.count,
        help="GPUs on the train task (default %(default)s)",
    )
    parser.add_argument(
        "--cpu-limit",
        default=defaults.cpu_limit,
        help="CPU limit of the train task (default %(default)s)",
    )
    parser.add_argument(
        "--memory-limit",
        default=defaults.memory_limit,
        help="memory limit of the train task (default %(default)s)",
    )


def _command_compile(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    written = compile_all(
        Path(args.out_dir), gpu_from_args(args), train_retries=args.train_retries, image=args.image
    )
    for target, path in written.items():
        print(f"{target}: {path}")
    print(f"compiled in {time.perf_counter() - started:.2f}s")
    return 0


def _command_run(args: argparse.Namespace) -> int:
    from src.local_run import LocalRunOptions, run_locally

    options = LocalRunOptions(
        source=args.source,
        workdir=Path(args.workdir),
        steps=args.steps,
        image_size=args.image_size,
        batch_size=args.batch_size,
        num_images=args.num_images,
        extra_params=dict(args.param),
        caching=args.cache,
    )
    summary = run_locally(options)
    print(summary.text())
    return 0 if summary.succeeded else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    compile_parser = commands.add_parser("compile", help="write the Vertex and KFP IR YAML")
    compile_parser.add_argument(
        "--out-dir",
        default=str(COMPILED_DIR),
        help="folder for the YAML files (default: compiled/)",
    )
    add_build_options(compile_parser)
    compile_parser.set_defaults(handler=_command_compile)

    run_parser = commands.add_parser(
        "run", help="run the pipeline here with kfp.local and a GCS emulator"
    )
    run_parser.add_argument(
        "--source",
        default=None,
        help="gs://BUCKET/PREFIX on real GCS (application-default credentials); default: the bundled sample set in a local emulator",
    )
    run_parser.add_argument(
        "--workdir", default="runs", help="where run folders go (default %(default)s)"
    )
    run_parser.add_argument(
        "--steps", type=int, default=20, help="training steps (default %(default)s)"
    )
    run_parser.add_argument(
        "--image-size", type=int, default=32, help="image side in pixels (default %(default)s)"
    )
    run_parser.add_argument(
        "--batch-size", type=int, default=4, help="training batch size (default %(default)s)"
    )
    run_parser.add_argument(
        "--num-images", type=int, default=16, help="images to generate (default %(default)s)"
    )
    run_parser.add_argument(
        "--param",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other pipeline parameter, e.g. --param fmap_max=64",
    )
    run_parser.add_argument("--cache", action="store_true", help="let kfp.local reuse cached steps")
    run_parser.set_defaults(handler=_command_run)

    from src.submit_cli import add_submit_parser

    add_submit_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
