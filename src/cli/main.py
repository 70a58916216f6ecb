"""`python -m src.pipeline {compile,run,submit}`: a thin `main(argv) -> int`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.backends.local import LocalRunOptions, run_locally
from src.backends.run_folder import RunnerWriteError
from src.cli import submit
from src.cli.options import (
    HelpFormatter,
    add_build_options,
    add_custom_job_options,
    add_param_option,
    build_problems,
    given_params,
    gpu_from_args,
    parameter_table,
    spot_from_args,
)
from src.common.errors import ConfigError
from src.params.descriptions import DESCRIPTIONS
from src.params.schema import BY_NAME, SAMPLE_DEFAULTS, compiled_defaults
from src.params.values import coerce_value, value_problems
from src.pipeline import COMPILED_DIR, TARGETS, compile_all

DESCRIPTION = "Train a Lightweight GAN and generate images with Kubeflow Pipelines."
# Shortcuts for the parameters a local run changes most; every one is also --param NAME=VALUE.
RUN_SHORTCUTS = ("steps", "image_size", "batch_size", "num_images")


def _command_compile(args: argparse.Namespace) -> int:
    problems = [p for target in TARGETS for p in build_problems(args, target)]
    problems += [
        f"--{name.replace('_', '-')} belongs to the spot train task: add --spot"
        for name in ("service_account", "network")
        if getattr(args, name) and not args.spot
    ]
    problems += value_problems(compiled_defaults())
    if problems:
        raise ConfigError.from_problems(sorted(set(problems), key=problems.index))
    started = time.perf_counter()
    written = compile_all(
        Path(args.out_dir),
        gpu_from_args(args),
        train_retries=args.train_retries,
        image=args.image,
        spot=spot_from_args(args),
    )
    for target, path in written.items():
        print(f"{target}: {path}")
    print(f"compiled in {time.perf_counter() - started:.2f}s")
    return 0


def _flag_values(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """Parameters given by a flag of their own: name -> (flag, value)."""
    flags = {"source_uri": ("--source", args.source)}
    flags |= {name: (f"--{name.replace('_', '-')}", getattr(args, name)) for name in RUN_SHORTCUTS}
    return {name: pair for name, pair in flags.items() if pair[1] is not None}


def run_params(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters of `run`: `--param` pairs and the flags; one given twice must agree."""
    given = given_params(args.param)
    problems = []
    for name, (flag, value) in _flag_values(args).items():
        if name in given and coerce_value(name, given[name], type(value)) != value:
            problems.append(
                f"{name} is given twice: {flag} {value} and --param {name}={given[name]}: "
                "give it once"
            )
        given[name] = value
    if problems:
        raise ConfigError.from_problems(problems)
    return given


def _command_run(args: argparse.Namespace) -> int:
    given = run_params(args)
    if args.image and args.resume is not None:
        raise ConfigError("--resume continues a run in its own image (or none): drop --image")
    options = LocalRunOptions(
        given=given,
        workdir=Path(args.workdir),
        resume=args.resume,
        verbose=args.verbose,
        image=args.image,
    )
    summary = run_locally(options)
    print(summary.text())
    if summary.interrupted:
        return 130
    return 0 if summary.succeeded else 1


def _add_compile_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compile",
        help="write the Vertex AI and KFP IR YAML into compiled/",
        description="Compile the pipeline into one IR YAML file per backend.",
        epilog="examples:\n  python -m src.pipeline compile\n"
        "  python -m src.pipeline compile --accelerator NVIDIA_L4 --accelerator-count 2",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--out-dir",
        default=str(COMPILED_DIR),
        help="folder for the YAML files (default: compiled/)",
    )
    add_build_options(parser)
    add_custom_job_options(parser, identity=True)
    parser.set_defaults(handler=_command_compile)


def _add_run_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run the whole pipeline here (kfp.local and a GCS emulator)",
        description="Run every step on this machine: kfp.local steps, fake-gcs-server for the "
        "bundled sample set (or real GCS with --source), and a summary.",
        epilog="examples:\n  python -m src.pipeline run\n"
        "  python -m src.pipeline run --steps 1500    # digits that read as digits (see README)\n"
        "  python -m src.pipeline run --source gs://my-bucket/cats/\n"
        "  python -m src.pipeline run --resume        # continue the newest run after Ctrl-C\n"
        "  python -m src.pipeline run --image lwgan-kfp:0.1.0-...   # every step in the image\n\n"
        + parameter_table("local")
        + "\n  on the bundled sample set (no --source) also "
        + ", ".join(f"{name}={value!r}" for name, value in SAMPLE_DEFAULTS.items())
        + ": its digits are grey",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--source",
        default=None,
        help="gs://BUCKET/PREFIX on real GCS (application-default credentials); "
        "default: the bundled sample set (grey digits) in a local emulator",
    )
    for name in RUN_SHORTCUTS:
        param = BY_NAME[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=param.kind,
            default=None,
            help=f"{DESCRIPTIONS[param.name]} (default {param.local_default})",
        )
    add_param_option(parser, "overrides the local default")
    parser.add_argument(
        "--workdir", default="runs", help="where run folders go (default %(default)s)"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="RUN",
        help="continue a failed or killed run (its id or folder; default: the newest in "
        "--workdir): finished steps are reused, training goes on from its last checkpoint",
    )
    parser.add_argument(
        "--image",
        default=None,
        help="run every step in containers of this project image (python -m "
        "devtools.project_image build), through kfp.local's DockerRunner, on a network that "
        "reaches only the emulator; default: steps as subprocesses here",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="stream every step's full log to the console"
    )
    parser.set_defaults(handler=_command_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.pipeline", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    _add_compile_parser(commands)
    _add_run_parser(commands)
    submit.add_submit_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2: bad input, nothing was started)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RunnerWriteError as error:  # a new run's folder could not be written
        print(f"error: {error} (or pass --workdir on another disk)", file=sys.stderr)
        return 1
