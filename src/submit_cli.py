"""`submit vertex` and `submit kfp`: compile with the chosen GPU and send, or show, the run."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from src.pipeline_params import parse_key_value
from src.validation import ConfigError


def _common_options(parser: argparse.ArgumentParser) -> None:
    from src.pipeline import add_build_options

    parser.add_argument(
        "--param",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline parameter; source_uri is required",
    )
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
        "submit", help="submit the pipeline to Vertex AI or a KFP endpoint"
    )
    backends = submit.add_subparsers(dest="backend", required=True)

    vertex = backends.add_parser("vertex", help="Vertex AI Pipelines")
    vertex.add_argument("--project", required=False, default="", help="Google Cloud project ID")
    vertex.add_argument(
        "--region", required=False, default="", help="Vertex AI region, e.g. us-central1"
    )
    vertex.add_argument("--pipeline-root", default="", help="gs:// folder for the run's artifacts")
    vertex.add_argument("--display-name", default="lightweight-gan", help="run name in the console")
    vertex.add_argument("--job-id", default=None, help="explicit job ID (default: generated)")
    vertex.add_argument(
        "--label",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label on the job",
    )
    vertex.add_argument(
        "--kms-key", default=None, help="CMEK key projects/P/locations/L/keyRings/R/cryptoKeys/K"
    )
    vertex.add_argument("--service-account", default=None, help="service account the run acts as")
    vertex.add_argument("--network", default=None, help="VPC: projects/NUMBER/global/networks/NAME")
    vertex.add_argument(
        "--experiment", default=None, help="Vertex AI experiment to record the run in"
    )
    vertex.add_argument(
        "--schedule",
        default=None,
        metavar="CRON",
        help="create a cron schedule instead of one run, e.g. '0 3 * * 1'",
    )
    _common_options(vertex)
    vertex.set_defaults(handler=run_vertex)

    kfp_parser = backends.add_parser(
        "kfp", help="open-source KFP 2.x endpoint (KFP on GKE, AI Platform Pipelines 2.x)"
    )
    kfp_parser.add_argument(
        "--host",
        required=True,
        help="endpoint URL, e.g. https://...pipelines.googleusercontent.com",
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


def _compile_for(target: str, args: argparse.Namespace, folder: Path) -> Path:
    from src.pipeline import COMPILED_FILES, compile_pipeline, gpu_from_args

    return compile_pipeline(
        target,
        folder / COMPILED_FILES[target],
        gpu_from_args(args),
        train_retries=args.train_retries,
        image=args.image,
    )


def run_vertex(args: argparse.Namespace) -> int:
    from src import submit_vertex
    from src.pipeline_params import validate_for_submission

    parameters = validate_for_submission(dict(args.param))
    with tempfile.TemporaryDirectory() as folder:
        template = _compile_for("vertex", args, Path(folder))
        submission = submit_vertex.VertexSubmission(
            project=args.project,
            region=args.region,
            pipeline_root=args.pipeline_root,
            template_path=template,
            parameter_values=parameters,
            display_name=args.display_name,
            job_id=args.job_id,
            enable_caching=args.enable_caching,
            labels=dict(args.label),
            encryption_key=args.kms_key,
            service_account=args.service_account,
            network=args.network,
            experiment=args.experiment,
        )
        submission.validate()
        if args.schedule:
            result = submit_vertex.create_schedule(submission, args.schedule, dry_run=args.dry_run)
        else:
            result = submit_vertex.submit(submission, wait=args.wait, dry_run=args.dry_run)
    print(submit_vertex.as_json(result))
    return 1 if submit_vertex.failed(str(result.get("state", ""))) else 0


def run_kfp(args: argparse.Namespace) -> int:
    from src import submit_kfp
    from src.pipeline_params import validate_for_submission

    parameters = validate_for_submission(dict(args.param))
    with tempfile.TemporaryDirectory() as folder:
        package = _compile_for("kfp", args, Path(folder))
        submission = submit_kfp.KfpSubmission(
            host=args.host,
            package_path=package,
            parameter_values=parameters,
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
        try:
            result = submit_kfp.submit(
                submission, wait=args.wait, dry_run=args.dry_run, timeout_s=args.timeout
            )
        except TimeoutError as error:
            raise ConfigError(f"the run did not finish within --timeout {args.timeout}s") from error
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 1 if submit_kfp.failed(result.get("state")) else 0
