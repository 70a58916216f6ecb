"""Submit the compiled pipeline to Vertex AI Pipelines (or schedule it)."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.common.errors import ConfigError

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
_KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_TERMINAL_FAILURES = {"PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


@dataclass
class VertexSubmission:
    """Everything a Vertex AI pipeline run needs, validated before any request."""

    project: str
    region: str
    pipeline_root: str
    template_path: Path
    parameter_values: dict[str, Any] = field(default_factory=dict)
    display_name: str = "lightweight-gan"
    job_id: str | None = None
    enable_caching: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)
    encryption_key: str | None = None
    service_account: str | None = None
    network: str | None = None
    experiment: str | None = None

    def problems(self) -> list[str]:
        """Every bad or missing option, each with its fix."""
        problems = []
        if not self.project:
            problems.append("--project is required: the Google Cloud project ID to run in")
        if not self.region:
            problems.append("--region is required: a Vertex AI region such as us-central1")
        elif problem := region_problem(self.region):
            problems.append(problem)
        if not self.pipeline_root.startswith("gs://") or len(self.pipeline_root) <= len("gs://"):
            problems.append(
                f"--pipeline-root {self.pipeline_root!r} must be a gs:// URI, e.g. "
                "gs://BUCKET/pipeline-root, where Vertex writes the run's artifacts"
            )
        if self.job_id is not None and not _JOB_ID.match(self.job_id):
            problems.append(f"--job-id {self.job_id!r}: use lower-case letters, digits and '-'")
        problems += [
            f"label {key}={value}: keys and values use lower-case letters, digits, '_' and '-'"
            for key, value in self.labels.items()
            if not _LABEL.match(key) or not re.match(r"^[a-z0-9_-]{0,63}$", value)
        ]
        if self.encryption_key and not _KMS_KEY.match(self.encryption_key):
            problems.append(
                "--kms-key must look like projects/P/locations/L/keyRings/R/cryptoKeys/K"
            )
        if self.network and not self.network.startswith("projects/"):
            problems.append("--network must be projects/PROJECT_NUMBER/global/networks/NAME")
        return problems

    def validate(self) -> None:
        """Raises one ConfigError naming every problem."""
        if problems := self.problems():
            raise ConfigError.from_problems(problems)


def region_problem(region: str) -> str | None:
    """What is wrong with `region` as a Vertex AI location (the SDK's own list), if anything."""
    from google.cloud.aiplatform.constants.base import SUPPORTED_REGIONS

    if region in SUPPORTED_REGIONS:
        return None
    close = difflib.get_close_matches(region, sorted(SUPPORTED_REGIONS), n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"--region {region!r} is not a Vertex AI region: {hint}See cloud.google.com/vertex-ai/docs/general/locations"


def default_credentials():
    """Application-default credentials, or a ConfigError that says how to get them."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except DefaultCredentialsError as error:
        raise ConfigError(
            "no Google credentials found: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS (--dry-run needs none)"
        ) from error
    return credentials


def build_job(submission: VertexSubmission, credentials=None):
    """The `aiplatform.PipelineJob`, with service account and network filled in (not sent)."""
    from google.cloud import aiplatform

    submission.validate()
    credentials = credentials or default_credentials()
    aiplatform.init(project=submission.project, location=submission.region, credentials=credentials)
    job = aiplatform.PipelineJob(
        display_name=submission.display_name,
        template_path=str(submission.template_path),
        job_id=submission.job_id,
        pipeline_root=submission.pipeline_root,
        parameter_values=submission.parameter_values,
        enable_caching=submission.enable_caching,
        labels=submission.labels or None,
        encryption_spec_key_name=submission.encryption_key,
        project=submission.project,
        location=submission.region,
        credentials=credentials,
    )
    return job


def request_preview(submission: VertexSubmission, job) -> dict[str, Any]:
    """What `submit()` would send: the PipelineJob resource, its spec shortened to a summary."""
    resource = type(job._gca_resource).to_dict(job._gca_resource)
    spec = resource.pop("pipeline_spec", {}) or {}
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    resource["pipeline_spec_summary"] = {
        "name": spec.get("pipelineInfo", {}).get("name"),
        "sdk_version": spec.get("sdkVersion"),
        "tasks": sorted(spec.get("root", {}).get("dag", {}).get("tasks", {})),
        "train_resources": executors.get("exec-train-gan", {})
        .get("container", {})
        .get("resources"),
        "images": sorted({e.get("container", {}).get("image") for e in executors.values()}),
    }
    if submission.service_account:
        resource["service_account"] = submission.service_account
    if submission.network:
        resource["network"] = submission.network
    return {
        "parent": f"projects/{submission.project}/locations/{submission.region}",
        "pipeline_job_id": job.job_id,
        "experiment": submission.experiment,
        "pipeline_job": resource,
    }


def submit(
    submission: VertexSubmission, *, wait: bool = False, dry_run: bool = False, credentials=None
) -> dict[str, Any]:
    """Creates the pipeline job (or only shows it); with `wait`, follows it to the end."""
    if dry_run and credentials is None:
        credentials = _offline_credentials()
    job = build_job(submission, credentials)
    preview = request_preview(submission, job)
    if dry_run:
        return {"dry_run": True, "request": preview}
    job.submit(
        service_account=submission.service_account,
        network=submission.network,
        experiment=submission.experiment,
    )
    result = {"dry_run": False, "name": job.resource_name, "state": str(job.state.name)}
    if wait:
        try:
            job.wait()
        except RuntimeError as error:  # aiplatform raises when the job ends failed or cancelled
            log.error("pipeline job %s ended badly: %s", job.resource_name, error)
        result["state"] = job.state.name
    return result


def create_schedule(
    submission: VertexSubmission, cron: str, *, dry_run: bool = False, credentials=None
) -> dict[str, Any]:
    """Runs the pipeline on a cron schedule, e.g. '0 3 * * 1' (Mondays 03:00 UTC)."""
    if len(cron.split()) != 5 and not cron.startswith("TZ="):
        raise ConfigError(
            f"--schedule {cron!r} is not a 5-field cron expression such as '0 3 * * 1'"
        )
    if dry_run and credentials is None:
        credentials = _offline_credentials()
    job = build_job(submission, credentials)
    if dry_run:
        return {"dry_run": True, "cron": cron, "request": request_preview(submission, job)}
    schedule = job.create_schedule(
        cron=cron,
        display_name=f"{submission.display_name}-schedule",
        service_account=submission.service_account,
        network=submission.network,
    )
    return {"dry_run": False, "schedule": schedule.resource_name, "cron": cron}


def _offline_credentials():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def failed(state: str) -> bool:
    return state in _TERMINAL_FAILURES
