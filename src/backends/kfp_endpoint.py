"""Submit the compiled pipeline to an open-source KFP 2.x endpoint.

Works with KFP on GKE and with AI Platform Pipelines instances running a 2.x
backend. The legacy hosted AI Platform Pipelines (KFP 1.x) cannot read v2 IR.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from src.common.errors import ConfigError

log = logging.getLogger(__name__)
FAILED_STATES = {"failed", "error", "canceled", "cancelled", "skipped"}


@dataclass
class KfpSubmission:
    host: str
    package_path: Path
    parameter_values: dict[str, Any] = field(default_factory=dict)
    pipeline_name: str = "lightweight-gan"
    version_name: str | None = None
    experiment: str = "lightweight-gan"
    namespace: str | None = None
    run_name: str | None = None
    pipeline_root: str | None = None
    enable_caching: bool | None = None
    token: str | None = None
    google_auth: bool = False

    def problems(self) -> list[str]:
        """Every bad or missing option, each with its fix."""
        problems = []
        parsed = urlparse(self.host or "")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            problems.append(
                f"--host {self.host!r} must be the endpoint's URL, e.g. "
                "https://XXXX-dot-us-central1.pipelines.googleusercontent.com or http://localhost:8080"
            )
        if self.token and self.google_auth:
            problems.append("use either --token or --google-auth, not both")
        return problems

    def validate(self) -> None:
        """Raises one ConfigError naming every problem."""
        if problems := self.problems():
            raise ConfigError.from_problems(problems)

    def mirror_warning(self) -> str | None:
        """Why a retried train task would start again at step 0, when it would."""
        root = str(self.parameter_values.get("checkpoint_root", ""))
        if root.startswith("gs://") or (self.pipeline_root or "").startswith("gs://"):
            return None
        where = self.pipeline_root or "the backend's default (minio:// on a stock KFP install)"
        return (
            f"no checkpoint mirror: the pipeline root is {where} and checkpoint_root is "
            f"{root or 'empty'}, so a retried or preempted train task starts again at step 0. "
            "Pass --param checkpoint_root=gs://BUCKET/FOLDER (or a gs:// --pipeline-root) to "
            "resume from the last checkpoint instead"
        )

    def default_version_name(self) -> str:
        """The YAML's content hash: re-uploading the same pipeline names the same version."""
        digest = hashlib.sha256(self.package_path.read_bytes()).hexdigest()[:12]
        return f"{self.pipeline_name}-{digest}"


def check_reachable(host: str, timeout_s: float = 3.0) -> None:
    """Fails in seconds when nothing listens at `host` (kfp.Client would retry for 25 s)."""
    parsed = urlparse(host)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot reach the KFP endpoint {host} ({error}): check --host, the port-forward "
            "(kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80) or your network"
        ) from error


def google_access_token() -> str:
    """An access token from application-default credentials, for AI Platform Pipelines."""
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials.token


def make_client(submission: KfpSubmission):
    import kfp

    check_reachable(submission.host)
    token = submission.token or (google_access_token() if submission.google_auth else None)
    return kfp.Client(
        host=submission.host, namespace=submission.namespace or "kubeflow", existing_token=token
    )


def plan(submission: KfpSubmission) -> dict[str, Any]:
    """What `submit` will do, for --dry-run and the log."""
    return {
        "host": submission.host,
        "pipeline_name": submission.pipeline_name,
        "version_name": submission.version_name or submission.default_version_name(),
        "experiment": submission.experiment,
        "namespace": submission.namespace,
        "run_name": submission.run_name,
        "pipeline_root": submission.pipeline_root,
        "enable_caching": submission.enable_caching,
        "parameters": submission.parameter_values,
        # Compiled into a temporary folder that is gone by now: what it was, not where.
        "package": _describe(submission.package_path),
        "warnings": [w for w in (submission.mirror_warning(),) if w],
    }


def _describe(package: Path) -> str:
    data = package.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"{package.name} ({len(data):,} bytes, sha256 {digest}; `compile` writes the same file)"


def submit(
    submission: KfpSubmission,
    *,
    wait: bool = False,
    dry_run: bool = False,
    timeout_s: int = 7 * 24 * 3600,
) -> dict[str, Any]:
    """Uploads the pipeline (or a new version), creates a run in the experiment, maybe waits."""
    submission.validate()
    steps = plan(submission)
    if dry_run:
        return {"dry_run": True, **steps}
    client = make_client(submission)
    pipeline_id = client.get_pipeline_id(submission.pipeline_name)
    version_id = None
    if pipeline_id is None:
        pipeline = client.upload_pipeline(
            str(submission.package_path),
            pipeline_name=submission.pipeline_name,
            namespace=submission.namespace,
        )
        pipeline_id = pipeline.pipeline_id
        listing = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        version_id = listing.pipeline_versions[0].pipeline_version_id
    else:
        version = client.upload_pipeline_version(
            str(submission.package_path),
            pipeline_version_name=steps["version_name"],
            pipeline_id=pipeline_id,
        )
        version_id = version.pipeline_version_id
    experiment = client.create_experiment(submission.experiment, namespace=submission.namespace)
    run_name = submission.run_name or f"{submission.pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=run_name,
        params=submission.parameter_values,
        pipeline_id=pipeline_id,
        version_id=version_id,
        pipeline_root=submission.pipeline_root,
        enable_caching=submission.enable_caching,
    )
    result = {
        "dry_run": False,
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "experiment_id": experiment.experiment_id,
        "run_id": run.run_id,
        "state": run.state,
    }
    if wait:
        finished = client.wait_for_run_completion(run.run_id, timeout=timeout_s)
        result["state"] = finished.state
    return result


def failed(state: str | None) -> bool:
    return (state or "").lower() in FAILED_STATES
