"""Training on spot capacity: the train task as a Vertex AI CustomJob, or on GKE spot nodes.

Vertex AI runs the train step's own container (image, command and arguments
unchanged) as a CustomJob with the SPOT scheduling strategy, built by Google's
`create_custom_training_job_from_component`; the machine comes from the GPU table
(accelerators.py). On GKE the task selects spot nodes and tolerates their taint.
Both send SIGTERM before a preemption; the train step then checkpoints the step
it finished (src/gan/training/stopping.py) and the task's retries resume it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from src.build.accelerators import GPUS, GpuRequest, normalise_accelerator
from src.common import runtime_env

# Preemptions come in runs; each retry resumes from the mirrored checkpoint.
SPOT_RETRIES = 8
_TENSORBOARD = re.compile(r"^projects/[^/]+/locations/([^/]+)/tensorboards/[^/]+$")


@dataclass(frozen=True)
class SpotOptions:
    """What a spot train task asks for besides its GPU (the CustomJob's options on Vertex)."""

    tensorboard: str = ""  # projects/P/locations/L/tensorboards/ID
    service_account: str = ""
    network: str = ""
    enable_web_access: bool = False

    def problems(self, gpu: GpuRequest, region: str = "") -> list[str]:
        """Every reason this cannot run on spot capacity, each with its fix."""
        problems = []
        try:
            accelerator = normalise_accelerator(gpu.accelerator)
            if not GPUS[accelerator].spot:
                offered = ", ".join(name for name, entry in GPUS.items() if entry.spot)
                problems.append(
                    f"--spot: {accelerator} has no spot offering (it comes through reservations "
                    f"or flex-start); choose one of {offered}, or drop --spot"
                )
        except ValueError:
            pass  # the accelerator's own check reports it
        match = _TENSORBOARD.match(self.tensorboard) if self.tensorboard else None
        if self.tensorboard and not match:
            problems.append(
                f"--tensorboard {self.tensorboard!r} is not a Vertex AI TensorBoard resource: "
                "pass projects/PROJECT/locations/REGION/tensorboards/ID (gcloud ai tensorboards list)"
            )
        elif match and region and match.group(1) != region:
            problems.append(
                f"--tensorboard is in {match.group(1)}, the job runs in {region}: use a "
                f"TensorBoard in {region}, or --region {match.group(1)}"
            )
        if self.tensorboard and not self.service_account:
            problems.append(
                "--tensorboard needs --service-account: Vertex AI refuses a CustomJob that "
                "writes to a TensorBoard as its default agent; pass the job's service account "
                "(SA@PROJECT.iam.gserviceaccount.com, with roles/aiplatform.user and write "
                "access to the pipeline root)"
            )
        if self.network and not self.network.startswith("projects/"):
            problems.append("--network must be projects/PROJECT_NUMBER/global/networks/NAME")
        return problems


def vertex_spot_component(component, gpu: GpuRequest, spot: SpotOptions):
    """`component` as a CustomJob on spot capacity of `gpu`'s usual machine (imports GCPC)."""
    from google_cloud_pipeline_components.v1.custom_job import (
        create_custom_training_job_from_component,
    )

    env = [{"name": runtime_env.SPOT, "value": "1"}]
    if spot.tensorboard:
        env.append({"name": runtime_env.TENSORBOARD, "value": spot.tensorboard})
    return create_custom_training_job_from_component(
        component,
        display_name="train-gan",
        machine_type=gpu.machine.name,
        accelerator_type=gpu.accelerator,
        accelerator_count=gpu.count,
        restart_job_on_worker_restart=True,
        strategy="SPOT",
        tensorboard=spot.tensorboard,
        service_account=spot.service_account,
        network=spot.network,
        enable_web_access=spot.enable_web_access,
        env=env,
    )
