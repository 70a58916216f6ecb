"""`submit vertex` and `submit kfp`: compile with the chosen GPU and send, or show, the run."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from src.backends import kfp_endpoint, vertex
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
from src.params.schema import compiled_defaults
from src.params.values import parse_key_value, typed_values
from src.pipeline import COMPILED_FILES, compile_pipeline

VERTEX_EXAMPLE = """examples:
  python -m src.pipeline submit vertex --project my-project --region us-central1 \\
      --pipeline-root gs://my-bucket/pipeline-root --param source_uri=gs://my-bucket/images/
  python -m src.pipeline submit vertex ... --accelerator NVIDIA_L4 --dry-run
"""
KFP_EXAMPLE = """examples:
  python -m src.pipeline submit kfp --host https://XXXX-dot-us-central1.pipelines.googleusercontent.com \\
      --google-auth --param source_uri=gs://my-bucket/images/
"""


def _common_options(parser: argparse.ArgumentParser) -> None:
    add_param_option(parser, "source_uri is required")
    parser.add_argument(
        "--wait", action="store_true", help="follow the run until it ends; exit 1 if it fails"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the request instead of sending it"
    )
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument(
        "--cache",
        dest="enable_caching",
        action="store_true",
        default=None,
        help="force caching on for every task",
    )
    caching.add_argument(
        "--no-cache",
        dest="enable_caching",
        action="store_false",
        help="force caching off for every task",
    )
    add_build_options(parser)


def add_submit_parser(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser(
        "submit",
        help="send a run to Vertex AI Pipelines or a KFP endpoint",
        description="Compile with your GPU options and send a run to a backend.",
        epilog="examples:\n  python -m src.pipeline submit vertex --help\n"
        "  python -m src.pipeline submit kfp --help",
        formatter_class=HelpFormatter,
    )
    backends = submit.add_subparsers(dest="backend", required=True, metavar="BACKEND")

    vertex_parser = backends.add_parser(
        "vertex",
        help="Vertex AI Pipelines",
        description="Compile for Vertex AI with your GPU options and create a pipeline job.",
        epilog=VERTEX_EXAMPLE + "\n" + parameter_table("compiled"),
        formatter_class=HelpFormatter,
    )
    required = vertex_parser.add_argument_group("required")
    required.add_argument("--project", default="", help="Google Cloud project ID")
    required.add_argument("--region", default="", help="Vertex AI region, e.g. us-central1")
    required.add_argument(
        "--pipeline-root", default="", help="gs:// folder for the run's artifacts"
    )
    vertex_parser.add_argument(
        "--display-name", default="lightweight-gan", help="run name in the console"
    )
    vertex_parser.add_argument(
        "--job-id", default=None, help="explicit job ID (default: generated)"
    )
    vertex_parser.add_argument(
        "--label",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label on the job",
    )
    vertex_parser.add_argument(
        "--kms-key", default=None, help="CMEK key projects/P/locations/L/keyRings/R/cryptoKeys/K"
    )
    vertex_parser.add_argument(
        "--service-account", default=None, help="service account the run acts as"
    )
    vertex_parser.add_argument(
        "--network", default=None, help="VPC: projects/NUMBER/global/networks/NAME"
    )
    vertex_parser.add_argument(
        "--experiment", default=None, help="Vertex AI experiment to record the run in"
    )
    vertex_parser.add_argument(
        "--schedule",
        default=None,
        metavar="CRON",
        help="create a cron schedule instead of one run, e.g. '0 3 * * 1'",
    )
    _common_options(vertex_parser)
    add_custom_job_options(vertex_parser, identity=False)  # --service-account, --network: above
    vertex_parser.set_defaults(handler=run_vertex)

    kfp_parser = backends.add_parser(
        "kfp",
        help="open-source KFP 2.x endpoint (KFP on GKE, AI Platform Pipelines 2.x)",
        description="Compile for a KFP 2.x backend, upload it (or a new version) and create a run.",
        epilog=KFP_EXAMPLE + "\n" + parameter_table("compiled"),
        formatter_class=HelpFormatter,
    )
    kfp_parser.add_argument_group("required").add_argument(
        "--host", default="", help="endpoint URL, e.g. https://...pipelines.googleusercontent.com"
    )
    kfp_parser.add_argument(
        "--experiment", default="lightweight-gan", help="experiment name (created if missing)"
    )
    kfp_parser.add_argument(
        "--namespace", default=None, help="namespace of a multi-user deployment"
    )
    kfp_parser.add_argument(
        "--pipeline-name", default="lightweight-gan", help="pipeline name in the UI"
    )
    kfp_parser.add_argument("--version", default=None, help="version name (default: content hash)")
    kfp_parser.add_argument("--run-name", default=None, help="run name (default: timestamped)")
    kfp_parser.add_argument(
        "--pipeline-root", default=None, help="artifact root (default: the backend's)"
    )
    kfp_parser.add_argument("--token", default=None, help="bearer token for the endpoint")
    kfp_parser.add_argument(
        "--google-auth",
        action="store_true",
        help="authenticate with application-default Google credentials",
    )
    kfp_parser.add_argument(
        "--timeout", type=int, default=7 * 24 * 3600, help="seconds --wait waits"
    )
    _common_options(kfp_parser)
    kfp_parser.set_defaults(handler=run_kfp)


def _checked_params(
    args: argparse.Namespace, target: str, problems: list[str], region: str = ""
) -> dict[str, Any]:
    """The given parameters, typed; raises every problem (with the options' ones) at once."""
    given = given_params(args.param)
    typed, param_problems = typed_values(given, compiled_defaults())
    problems = [*param_problems, *problems, *build_problems(args, target, region)]
    if problems:
        raise ConfigError.from_problems(problems)
    return {name: value for name, value in typed.items() if name in given}


def _compile_for(target: str, args: argparse.Namespace, folder: Path) -> Path:
    return compile_pipeline(
        target,
        folder / COMPILED_FILES[target],
        gpu_from_args(args),
        train_retries=args.train_retries,
        image=args.image,
        spot=spot_from_args(args),
    )


def run_vertex(args: argparse.Namespace) -> int:
    submission = vertex.VertexSubmission(
        project=args.project,
        region=args.region,
        pipeline_root=args.pipeline_root,
        template_path=Path(),
        display_name=args.display_name,
        job_id=args.job_id,
        enable_caching=args.enable_caching,
        labels=dict(args.label),
        encryption_key=args.kms_key,
        service_account=args.service_account,
        network=args.network,
        experiment=args.experiment,
    )
    submission.parameter_values = _checked_params(
        args, "vertex", submission.problems(), args.region
    )
    with tempfile.TemporaryDirectory() as folder:
        submission.template_path = _compile_for("vertex", args, Path(folder))
        if args.schedule:
            result = vertex.create_schedule(submission, args.schedule, dry_run=args.dry_run)
        else:
            result = vertex.submit(submission, wait=args.wait, dry_run=args.dry_run)
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 1 if vertex.failed(str(result.get("state", ""))) else 0


def run_kfp(args: argparse.Namespace) -> int:
    submission = kfp_endpoint.KfpSubmission(
        host=args.host,
        package_path=Path(),
        pipeline_name=args.pipeline_name,
        version_name=args.version,
        experiment=args.experiment,
        namespace=args.namespace,
        run_name=args.run_name,
        pipeline_root=args.pipeline_root,
        enable_caching=args.enable_caching,
        token=args.token,
        google_auth=args.google_auth,
    )
    submission.parameter_values = _checked_params(args, "kfp", submission.problems())
    if warning := submission.mirror_warning():
        if args.spot:  # spot nodes are preempted: without a mirror every retry starts over
            raise ConfigError(f"--spot needs a checkpoint mirror: {warning}")
        print(f"warning: {warning}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        submission.package_path = _compile_for("kfp", args, Path(folder))
        try:
            result = kfp_endpoint.submit(
                submission, wait=args.wait, dry_run=args.dry_run, timeout_s=args.timeout
            )
        except TimeoutError as error:
            raise ConfigError(f"the run did not finish within --timeout {args.timeout}s") from error
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 1 if kfp_endpoint.failed(result.get("state")) else 0
