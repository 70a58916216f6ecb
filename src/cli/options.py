"""Options that more than one subcommand takes, and how their values become checked inputs."""

from __future__ import annotations

import argparse
from typing import Any

from src.build.accelerators import GPUS, GpuRequest
from src.build.spot import SpotOptions
from src.common.errors import ConfigError
from src.params.descriptions import DESCRIPTIONS
from src.params.schema import PARAMS
from src.params.values import parse_key_value
from src.pipeline import DEFAULT_TRAIN_RETRIES

HelpFormatter = argparse.RawDescriptionHelpFormatter  # keeps the examples as written


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options that change the compiled YAML: GPU, retries, project image."""
    defaults = GpuRequest()
    group = parser.add_argument_group("compiled pipeline")
    group.add_argument(
        "--train-retries",
        type=int,
        default=DEFAULT_TRAIN_RETRIES,
        help="retries of the train task; each resumes from its last checkpoint (default %(default)s)",
    )
    group.add_argument(
        "--image",
        default=None,
        help="run every step on this project image (built from Dockerfile) with nothing "
        "installed at run time; default: stock images, pinned packages, embedded code",
    )
    group.add_argument(
        "--accelerator",
        default=defaults.accelerator,
        help=f"GPU type for the train task, one of {', '.join(GPUS)} (or its GKE spelling, "
        "e.g. nvidia-l4; default %(default)s)",
    )
    group.add_argument(
        "--accelerator-count",
        type=int,
        default=defaults.count,
        help="GPUs on the train task (default %(default)s)",
    )
    group.add_argument(
        "--cpu-limit",
        default=None,
        help="CPU limit of the train task (default: the vCPUs of the accelerator's usual "
        "machine, 8 for one T4 on an n1-standard-8)",
    )
    group.add_argument(
        "--memory-limit",
        default=None,
        help="memory limit of the train task, e.g. 30G or 500M (default: the memory of the "
        "accelerator's usual machine, 30G for one T4)",
    )

    group.add_argument(
        "--spot",
        action="store_true",
        help="train on spot capacity (a fraction of the on-demand price): a Vertex AI CustomJob "
        "with the SPOT strategy, or GKE spot nodes; a preemption costs the step in flight",
    )


def add_custom_job_options(parser: argparse.ArgumentParser, *, identity: bool) -> None:
    """Options of the spot train task's Vertex AI CustomJob (`identity`: account and network too)."""
    group = parser.add_argument_group("spot train task on Vertex AI (with --spot)")
    group.add_argument(
        "--tensorboard",
        default="",
        help="a Vertex AI TensorBoard, projects/P/locations/REGION/tensorboards/ID, that shows "
        "the curves while training runs",
    )
    group.add_argument(
        "--enable-web-access", action="store_true", help="an interactive shell into the worker"
    )
    if identity:
        group.add_argument("--service-account", default="", help="the CustomJob's service account")
        group.add_argument("--network", default="", help="projects/NUMBER/global/networks/NAME")


def gpu_from_args(args: argparse.Namespace) -> GpuRequest:
    return GpuRequest(args.accelerator, args.accelerator_count, args.cpu_limit, args.memory_limit)


def spot_from_args(args: argparse.Namespace) -> SpotOptions | None:
    if not args.spot:
        return None
    return SpotOptions(
        tensorboard=getattr(args, "tensorboard", ""),
        service_account=getattr(args, "service_account", None) or "",
        network=getattr(args, "network", None) or "",
        enable_web_access=getattr(args, "enable_web_access", False),
    )


def build_problems(args: argparse.Namespace, target: str, region: str = "") -> list[str]:
    """Problems with the build options, for `target` ('vertex' or 'kfp')."""
    problems = []
    if args.train_retries < 0:
        problems.append(f"--train-retries {args.train_retries}: use 0 or more")
    try:
        gpu = gpu_from_args(args).validated(target)
    except ConfigError as error:
        return [*problems, str(error)]
    spot = spot_from_args(args)
    if spot is not None:
        problems += spot.problems(gpu, region)
    for option in ("tensorboard", "enable_web_access"):
        if getattr(args, option, None) and spot is None:
            problems.append(
                f"--{option.replace('_', '-')} belongs to the spot train task: add --spot"
            )
    return problems


def add_param_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--param",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"pipeline parameter (repeatable); {what}. The parameters are listed below.",
    )


def parameter_table(default_of: str) -> str:
    """The pipeline parameters for an epilog: name, default ('local' or 'compiled'), help."""
    rows = []
    for p in PARAMS:
        value = p.local_default if default_of == "local" else p.compiled
        shown = "required" if value is None else repr(value)
        rows.append(f"  {p.name:<26} {shown:<22} {DESCRIPTIONS[p.name]}")
    return "pipeline parameters (--param NAME=VALUE; default):\n" + "\n".join(rows)


def given_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`--param` pairs as a dict; a name given twice is a problem, not a silent override."""
    given: dict[str, Any] = {}
    twice = sorted({name for name, _ in pairs if sum(n == name for n, _ in pairs) > 1})
    if twice:
        raise ConfigError(f"--param {', '.join(twice)} given more than once: give each once")
    given.update(pairs)
    return given
